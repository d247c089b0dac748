"""Speculative decoding in the worker: the plain model vs the same model with a draft model and with
n-gram prompt lookup, measured in one run on the same prompts with greedy sampling.

    .venv/bin/python bench/bench_speculative.py [--model qwen2.5-coder-1.5b] [--draft qwen2.5-coder-0.5b]
                                                [--threads 2] [--tokens 160] [--rounds 2]

For each configuration: generation tokens/s (median over prompts and rounds, runs interleaved so a
busy machine slows every configuration alike), the ratio to the plain model, and whether the output
is token-for-token identical to the plain model's (it must be: the model verifies every proposal).
Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fazai.config import load_settings  # noqa: E402
from fazai.worker.engine import Engine, EngineConfig  # noqa: E402
from fazai.worker.model_path import resolve_model  # noqa: E402

# Operator-style prompts; the answers repeat what the prompt holds (paths, units, names), which is
# where prompt lookup helps, and a draft model of the same family agrees with the model often.
PROMPTS = [
    "Explain, step by step, how to find which process listens on TCP port 8080 on a Debian 12 server "
    "and how to read that service's recent logs. Give the exact commands.",
    "Here is `df -h` output:\nFilesystem Size Used Avail Use% Mounted on\n/dev/sda1 252G 55G 185G 23% /\n"
    "tmpfs 12G 0 12G 0% /dev/shm\n/dev/sdb1 1.8T 1.7T 100G 95% /srv\n"
    "Summarise every filesystem's usage in one line each, then say which one needs attention and why.",
    "Write a bash one-liner that counts failed SSH password attempts per source IP in /var/log/auth.log "
    "and prints the top five, then explain each part of the pipeline.",
]


def find(name: str) -> Path:
    for d in (load_settings().paths.models_dir, REPO / ".cache" / "models"):
        try:
            p = resolve_model(name, d)
            if p.is_file():
                return p
        except Exception:
            continue
    raise SystemExit(f"model {name} is not installed: fazai model pull {name} --models-dir .cache/models")


def generate(engine: Engine, prompt: str, tokens: int) -> tuple[str, float, int]:
    """(text, seconds of generation, tokens generated) for one greedy completion."""
    messages = [{"role": "user", "content": prompt}]
    sampling = {"temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0, "max_tokens": tokens, "seed": 1}
    is_chat, body = engine.request_body(messages, sampling, 0)
    body["cache_prompt"] = False
    pieces: list[str] = []
    final: dict = {}

    def on_chunk(chunk: dict) -> bool:
        nonlocal final
        for ch in chunk.get("choices") or []:
            pieces.append((ch.get("delta") or {}).get("content") or ch.get("text") or "")
        if chunk.get("timings"):
            final = chunk
        return False

    t0 = time.perf_counter()
    out = engine.run(is_chat, body, on_chunk) or {}
    wall = time.perf_counter() - t0
    timings = (out.get("timings") if isinstance(out, dict) else None) or final.get("timings") or {}
    n = int(timings.get("predicted_n") or 0)
    secs = float(timings.get("predicted_ms") or 0) / 1000 or wall
    return "".join(pieces), secs, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--draft", default="qwen2.5-coder-0.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--kinds", nargs="*", default=["none", "draft", "ngram", "draft+ngram"])
    args = ap.parse_args()
    model, draft = find(args.model), find(args.draft)
    engines: dict[str, Engine] = {}
    with tempfile.TemporaryDirectory(prefix="fazai-spec-") as td:
        for kind in args.kinds:
            cfg = EngineConfig(model_path=model, threads=args.threads, slots=1, ctx_size=2048, batch_size=64,
                               cache_ram_mib=0, state_dir=Path(td) / kind, speculative=kind,
                               draft_model=draft if "draft" in kind else None)  # fmt: skip
            engines[kind] = Engine(cfg)
            print(f"loaded {args.model} speculative={kind} in {engines[kind].load_s:.1f} s", flush=True)
        rates: dict[str, list[float]] = {k: [] for k in engines}
        same: dict[str, bool] = {k: True for k in engines}
        for r in range(args.rounds):
            for i, prompt in enumerate(PROMPTS):
                ref = None
                for kind, eng in engines.items():  # interleaved: drift hits every configuration
                    text, secs, n = generate(eng, prompt, args.tokens)
                    rates[kind].append(n / secs if secs > 0 else 0.0)
                    if kind == "none":
                        ref = text
                    elif ref is not None and text != ref:
                        same[kind] = False
                    print(
                        f"  round {r + 1} prompt {i + 1} {kind:12} {n:4d} tok {n / secs:6.1f} tok/s",
                        flush=True,
                    )
        for eng in engines.values():
            eng.close()
    base = statistics.median(rates["none"]) if rates.get("none") else 0.0
    print()
    print(f"{'speculative':14} {'tok/s':>7} {'x plain':>8} {'identical':>10}")
    for kind, xs in rates.items():
        med = statistics.median(xs)
        print(f"{kind:14} {med:7.1f} {med / base if base else 0:8.2f} {'yes' if same[kind] else 'NO':>10}")
    print(f"model {args.model}, draft {args.draft}, {args.threads} threads, greedy, {args.tokens} tokens max")
    print("target: draft ≥ 1.6x plain, identical output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
