"""Benchmark of the resident worker against xllamacpp called directly in-process.

    .venv/bin/python bench/bench_worker.py [--model PATH] [--threads 2]

Prints, in one run: load time; prompt and generation tokens/s through the worker vs direct (ratio,
target ≥ 0.95); time to first token on turn 2 of a ~1,500-token conversation, cached vs cold
(target cached ≤ 1/20 of cold); first token of a new session with the shared system prefix cached
vs not; time to switch sessions (state saved and restored); abort latency (target ≤ 200 ms).
Timings on a shared machine are noisy: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fazai.config import WorkerSettings, load_settings  # noqa: E402
from fazai.models.base import Final, Message, SessionParams, Token  # noqa: E402
from fazai.models.worker_client import WorkerProvider  # noqa: E402

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
SLOTS, CTX, BATCH = 2, 4096, 16


def default_model() -> Path:
    try:
        from fazai.worker.model_path import resolve_model

        return resolve_model(DEFAULT_MODEL, load_settings().paths.models_dir)
    except Exception:
        return REPO / ".cache" / "models" / f"{DEFAULT_MODEL}.gguf"


def words(n: int, seed: int) -> str:
    rnd = random.Random(seed)
    vocab = ["disk", "memory", "cpu", "load", "nginx", "apache", "journal", "kernel", "socket", "port"]
    return " ".join(f"{rnd.choice(vocab)}{rnd.randint(0, 999)}" for _ in range(n))


# ---- direct, in-process ----------------------------------------------------------------------
def direct_load(model: Path, threads: int):
    """xllamacpp's Server with the same settings as the worker, in this process."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(model)
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.n_parallel, p.n_ctx, p.n_batch, p.n_ubatch = SLOTS, CTX * SLOTS, BATCH, BATCH
    p.warmup = False
    p.api_keys = ["bench"]
    t0 = time.perf_counter()
    server = xllamacpp.Server(p)
    return server, time.perf_counter() - t0


def direct_run(server, prompt: str, n_gen: int) -> dict[str, float]:
    """One generation called directly; same request shape the worker sends."""
    stamps: list[float] = []
    final: dict = {}

    def cb(chunk: dict) -> bool:
        ch = (chunk.get("choices") or [{}])[0]
        if (ch.get("delta") or {}).get("content"):
            stamps.append(time.perf_counter())
        if "timings" in chunk:
            final.update(chunk["timings"])
        return False

    body = {
        "messages": [{"role": "user", "content": prompt}],
        "n_predict": n_gen,
        "temperature": 0.0,
        "top_p": 0.9,
        "repeat_penalty": 1.05,
        "stream": True,
        "cache_prompt": True,
        "id_slot": 0,
        "return_progress": True,  # as the worker asks
    }
    t = time.perf_counter()
    server.handle_chat_completions(body, cb)
    return {
        "pp_tps": final["prompt_per_second"],
        "gen_tps": final["predicted_per_second"],
        "ttft_ms": (stamps[0] - t) * 1000,
        "wall_gen_tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "generated": len(stamps),
    }


def spawn(cmd: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log, env=env)


# ---- through the worker ----------------------------------------------------------------------
async def timed(session, messages: list[Message], params: SessionParams | None = None) -> dict:
    t = time.perf_counter()
    stamps: list[float] = []
    final: Final | None = None
    async for chunk in session.generate(messages, params=params):
        if isinstance(chunk, Token):
            stamps.append(time.perf_counter())
        else:
            final = chunk
    assert final is not None
    u = final.usage
    return {
        "ttft_ms": (stamps[0] - t) * 1000 if stamps else float("nan"),
        "wall_gen_tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0,
        "gen_tps": u.tokens_per_s,
        "pp_tps": (u.prompt_tokens - u.cached_tokens) / (u.prompt_ms / 1000) if u.prompt_ms else 0.0,
        "prompt_tokens": u.prompt_tokens,
        "cached": u.cached_tokens,
        "text": final.text,
        "final": final,
    }


def _keep_best(best: dict, run: dict) -> None:
    """Best of N per metric: on a shared machine the slowest runs measure the neighbours."""
    for k, v in run.items():
        if not isinstance(v, int | float) or k in ("prompt_tokens", "cached"):
            best.setdefault(k, v)
        elif k == "ttft_ms":
            best[k] = min(best.get(k, v), v)
        else:
            best[k] = max(best.get(k, v), v)


async def through_worker(
    model: Path, threads: int, prompt: str, n_gen: int, only_throughput: bool = False
) -> tuple[dict, dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    sock = tmp / "worker.sock"
    cmd = [sys.executable, "-m", "fazai.worker", "--model", str(model), "--socket", str(sock)]
    cmd += [
        "--threads",
        str(threads),
        "--slots",
        str(SLOTS),
        "--ctx-size",
        str(CTX),
        "--batch-size",
        str(BATCH),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    proc = spawn(cmd, tmp / "worker.log", env)
    out: dict = {}
    prov = WorkerProvider(sock, worker=WorkerSettings(autostart=False))
    try:
        while not sock.exists():
            if proc.poll() is not None:
                raise SystemExit((tmp / "worker.log").read_text()[-2000:])
            await asyncio.sleep(0.05)
        out["load_s"] = time.perf_counter() - t0
        status = await prov.status()
        out["engine_load_s"] = status["load_s"]

        # 1. throughput, alternating direct and worker runs so both see the same machine load
        #    (every prompt is new: no cache); the best of three each.
        server, d_load = await asyncio.to_thread(direct_load, model, threads)
        greedy = SessionParams(temperature=0.0, max_tokens=n_gen)
        best: dict = {}
        dbest: dict = {"load_s": d_load}
        for rep in range(3):
            r = await asyncio.to_thread(direct_run, server, f"{rep} direct {prompt}", n_gen)
            _keep_best(dbest, r)
            s = await prov.open_session(greedy)
            r = await timed(s, [Message("user", f"{rep} worker {prompt}")])
            _keep_best(best, r)
            await s.close()
        del server
        out["tp"] = best
        if only_throughput:
            return out, dbest

        # 2. turn 2 of a ~1,500-token conversation: cached vs cold
        short = SessionParams(temperature=0.0, max_tokens=8)
        conv = [Message("system", "You are a log analyst."), Message("user", words(370, 1))]
        a = await prov.open_session(short)
        t1 = await timed(a, conv)
        turn2 = [
            *conv,
            Message("assistant", t1["text"].strip()),
            Message("user", "Which entry repeats most?"),
        ]
        warm = await timed(a, turn2)
        b = await prov.open_session(short)  # same conversation, no cache anywhere
        cold = await timed(b, [Message("system", "You are a log auditor."), *turn2[1:]])
        out["turn2"] = {"cached": warm, "cold": cold}
        await a.close()
        await b.close()

        # 3. first token of a brand-new session: shared prefix cached vs not
        prefix = "You are FazAI, an operations assistant. " + words(70, 2)
        c = await prov.open_session(short)
        not_cached = await timed(c, [Message("system", prefix), Message("user", "Check disk usage.")])
        await c.close()
        prov.worker = WorkerSettings(autostart=False, system_prefix=prefix)  # first client sets the prefix
        tw = time.perf_counter()
        d = await prov.open_session(short)  # warms the prefix once
        out["prefix_warm_s"] = time.perf_counter() - tw
        await d.close()
        fresh = []
        for i in range(2):
            e = await prov.open_session(short)
            fresh.append(await timed(e, [Message("user", f"Check disk usage on host {i}.")]))
            await e.close()
        out["prefix"] = {"not_cached": not_cached, "cached": min(fresh, key=lambda r: r["ttft_ms"])}

        # 4. switching sessions: 3 sessions on 2 slots, round robin; each turn swaps states
        sess = [await prov.open_session(short) for _ in range(3)]
        hist = [[Message("user", words(40, 10 + i))] for i in range(3)]
        for s, h in zip(sess, hist, strict=True):
            r = await timed(s, h)
            h += [Message("assistant", r["text"].strip())]
        before = await prov.status()
        switch = []
        for rnd in range(2):
            for s, h in zip(sess, hist, strict=True):
                h.append(Message("user", f"next {rnd}"))
                r = await timed(s, h)
                h.append(Message("assistant", r["text"].strip()))
                switch.append(r)
        after = await prov.status()
        out["switch"] = switch
        out["swaps"] = (
            after["state_saves"] - before["state_saves"],
            after["state_restores"] - before["state_restores"],
        )
        # resident: the same session twice in a row keeps its slot
        s0, h0 = sess[0], hist[0]
        h0.append(Message("user", "again"))
        await timed(s0, h0)
        h0.append(Message("assistant", "ok"))
        h0.append(Message("user", "once more"))
        out["resident"] = await timed(s0, h0)
        for s in sess:
            await s.close()

        # 5. abort latency: during prompt processing and during generation
        out["abort_prompt"] = await abort_latency(prov, [Message("user", words(370, 99))], after_tokens=0)
        out["abort_gen"] = await abort_latency(prov, [Message("user", "Write a long story.")], after_tokens=5)
    finally:
        await prov.aclose()
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    return out, dbest


async def abort_latency(prov: WorkerProvider, messages: list[Message], after_tokens: int) -> list[float]:
    lat = []
    for _ in range(3):
        s = await prov.open_session(SessionParams(max_tokens=300, temperature=0.7))
        gen = s.generate(messages)
        got = 0
        t_abort: float | None = None
        if after_tokens == 0:
            task = asyncio.ensure_future(_drain(gen))
            await asyncio.sleep(1.0)
            t_abort = time.perf_counter()
            await s.abort()
            final = await task
        else:
            final = None
            async for chunk in gen:
                if isinstance(chunk, Token):
                    got += 1
                    if got == after_tokens:
                        t_abort = time.perf_counter()
                        await s.abort()
                else:
                    final = chunk
        assert final is not None and final.stop_reason == "aborted", final
        lat.append((time.perf_counter() - t_abort) * 1000)
        await s.close()
    return lat


async def _drain(gen) -> Final:
    final = None
    async for chunk in gen:
        if isinstance(chunk, Final):
            final = chunk
    return final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only-throughput", action="store_true", help="load time and tokens/s only")
    args = ap.parse_args()
    model = args.model or default_model()
    if not model.exists():
        raise SystemExit(f"model {model} not found — run `fazai model pull {DEFAULT_MODEL}` or pass --model")
    prompt = words(70, 7)
    n_gen = 64
    print(f"model: {model.name}  threads={args.threads} slots={SLOTS} ctx/slot={CTX} batch={BATCH}")
    w, d = asyncio.run(through_worker(model, args.threads, prompt, n_gen, args.only_throughput))
    tp = w["tp"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "n/a"

    print(
        f"load: direct Server() {d['load_s']:.2f} s | worker spawn→socket {w['load_s']:.2f} s "
        f"(model load inside {w['engine_load_s']:.2f} s)"
    )
    print(
        f"prompt tok/s (llama timings): direct {d['pp_tps']:.1f} | worker {tp['pp_tps']:.1f} | "
        f"ratio {ratio(tp['pp_tps'], d['pp_tps'])} (target ≥ 0.95)"
    )
    print(
        f"gen tok/s (llama timings):    direct {d['gen_tps']:.1f} | worker {tp['gen_tps']:.1f} | "
        f"ratio {ratio(tp['gen_tps'], d['gen_tps'])} (target ≥ 0.95)"
    )
    print(
        f"gen tok/s (as the client sees tokens arrive): direct {d['wall_gen_tps']:.1f} | "
        f"worker {tp['wall_gen_tps']:.1f} | ratio {ratio(tp['wall_gen_tps'], d['wall_gen_tps'])}"
    )
    print(
        f"first token, ~{tp['prompt_tokens']}-token prompt: direct {d['ttft_ms']:.0f} ms | "
        f"worker {tp['ttft_ms']:.0f} ms | ratio {ratio(d['ttft_ms'], tp['ttft_ms'])}"
    )
    if args.only_throughput:
        return
    c, k = w["turn2"]["cached"], w["turn2"]["cold"]
    print(
        f"turn 2 of a {c['prompt_tokens']}-token conversation, first token: cached {c['ttft_ms']:.0f} ms "
        f"({c['cached']} cached) | cold {k['ttft_ms']:.0f} ms ({k['cached']} cached) | "
        f"cached/cold = 1/{k['ttft_ms'] / c['ttft_ms']:.0f} (target ≤ 1/20)"
    )
    pc, pn = w["prefix"]["cached"], w["prefix"]["not_cached"]
    print(
        f"new session with the shared prefix ({pn['prompt_tokens']} tokens), first token: cached "
        f"{pc['ttft_ms']:.0f} ms ({pc['cached']} cached) | not cached {pn['ttft_ms']:.0f} ms | "
        f"1/{pn['ttft_ms'] / pc['ttft_ms']:.1f}; prefix warm-up {w['prefix_warm_s']:.2f} s once"
    )
    sw = sorted(r["ttft_ms"] for r in w["switch"])
    print(
        f"switching sessions (3 sessions on 2 slots, state saved+restored each turn; "
        f"{w['swaps'][0]} saves, {w['swaps'][1]} restores): first token median {sw[len(sw) // 2]:.0f} ms "
        f"(min {sw[0]:.0f}, max {sw[-1]:.0f}) | "
        f"same session staying in its slot {w['resident']['ttft_ms']:.0f} ms"
    )
    ap_, ag = w["abort_prompt"], w["abort_gen"]
    print(
        f"abort latency during prompt processing: {', '.join(f'{x:.0f}' for x in ap_)} ms; "
        f"during generation: {', '.join(f'{x:.0f}' for x in ag)} ms (target ≤ 200 ms)"
    )


if __name__ == "__main__":
    main()
