"""``fazai-worker``: the resident model process (see docs/worker.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from fazai.config import ConfigError, load_settings


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="fazai-worker", description="FazAI resident model process (ND-JSON over a Unix socket)."
    )
    ap.add_argument("--model", help="catalog name or path to a .gguf (default: [worker] model)")
    ap.add_argument("--socket", type=Path, help="Unix socket path (default: <runtime_dir>/worker.sock)")
    ap.add_argument("--threads", type=int, help="CPU threads (0 = all cores)")
    ap.add_argument("--slots", type=int, help="parallel KV-cache slots")
    ap.add_argument("--ctx-size", type=int, help="context tokens per session")
    ap.add_argument("--batch-size", type=int, help="prompt batch; smaller = faster abort")
    ap.add_argument("--system-prefix", help="shared system prompt evaluated once at start")
    ap.add_argument(
        "--speculative",
        choices=["none", "draft", "ngram", "draft+ngram"],
        help="speculative decoding (default: [worker] speculative)",
    )
    ap.add_argument(
        "--draft-model", help="catalog name or .gguf of the draft model (default: [worker] draft_model)"
    )
    return ap.parse_args(argv)


def _already_running(path: Path) -> bool:
    if not path.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False  # a stale socket left by a crash
    finally:
        s.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fazai-worker`` console script."""
    args = _parse(argv)
    try:
        settings = load_settings()
    except ConfigError as e:
        print(f"fazai-worker: {e}", file=sys.stderr)
        sys.exit(2)
    w = settings.worker
    sock = args.socket or settings.worker_socket
    model = args.model or w.model

    from fazai.models.base import ProviderError
    from fazai.worker.model_path import resolve_model

    try:
        model_path = resolve_model(model, settings.paths.models_dir)
    except ProviderError as e:
        print(f"fazai-worker: {e}", file=sys.stderr)
        sys.exit(1)
    speculative = args.speculative or w.speculative
    draft = args.draft_model or w.draft_model
    draft_path = None
    if "draft" in speculative:
        if not draft:
            need = "--draft-model or [worker] draft_model"
            print(f"fazai-worker: speculative 'draft' needs a draft model: {need}", file=sys.stderr)
            sys.exit(2)
        try:
            draft_path = resolve_model(draft, settings.paths.models_dir)
        except ProviderError as e:
            print(f"fazai-worker: draft model: {e}", file=sys.stderr)
            sys.exit(1)
    if _already_running(sock):
        print(f"fazai-worker: a worker already listens on {sock}", file=sys.stderr)
        sys.exit(1)

    from fazai.worker.engine import Engine, EngineConfig, EngineError
    from fazai.worker.server import WorkerServer

    # Saved session states are private and disposable: a fresh directory per run.
    state_dir = Path(tempfile.mkdtemp(prefix="fazai-worker-", dir=os.environ.get("RUNTIME_DIRECTORY")))
    config = EngineConfig(
        model_path=model_path,
        threads=args.threads if args.threads is not None else w.threads,
        slots=args.slots or w.slots,
        ctx_size=args.ctx_size or w.ctx_size,
        batch_size=args.batch_size or w.batch_size,
        cache_ram_mib=w.cache_ram_mib,
        state_dir=state_dir,
        speculative=speculative,
        draft_model=draft_path,
        draft_max=w.draft_max,
    )
    print(
        f"fazai-worker: loading {model_path} ({config.slots} slots × {config.ctx_size} tokens)",
        file=sys.stderr,
    )
    try:
        engine = Engine(config)
    except EngineError as e:
        print(f"fazai-worker: {e} — check the file (`fazai model info`) or pull it again", file=sys.stderr)
        sys.exit(1)
    server = WorkerServer(engine, sock, model_name=model, system_prefix=args.system_prefix or w.system_prefix)

    async def run() -> None:
        await server.start()
        print(f"fazai-worker: ready on {sock} (loaded in {engine.load_s:.1f} s)", file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serving = asyncio.create_task(server.serve_forever())
        await stop.wait()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await server.close()

    try:
        asyncio.run(run())
    finally:
        for f in state_dir.glob("*.bin"):
            f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            state_dir.rmdir()
        print("fazai-worker: stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
