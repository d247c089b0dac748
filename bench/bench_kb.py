"""Knowledge-base benchmark: embedded store upsert/search latency at 1k/10k/100k items, embedding throughput.

Baselines measured in the same run:
- search: brute-force numpy (one matrix-vector product + argpartition) over the same vectors, and the
  old path, Qdrant's own exact scan (``EdgeStore(matrix=False)``);
- upsert: writing the same batch into a numpy array (the floor for "storing" vectors);
- embeddings: the same sentences one at a time (batch size 1) vs batched.

Run: .venv/bin/python bench/bench_kb.py [--sizes 1000,10000,100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fazai.knowledge.kb import INDEXED_FIELDS  # noqa: E402
from fazai.knowledge.store import EdgeStore, FieldMatch  # noqa: E402

DIM = 384
TAGS = ["nginx", "postfix", "fail2ban", "ssh", "disk", "memory", "systemd", "firewall", "dns", "docker"]


def pct(xs: list[float], p: float) -> float:
    """Percentile (nearest rank) in milliseconds."""
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def payload(i: int) -> dict[str, object]:
    return {
        "title": f"item {i}",
        "tags": [TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]],
        "status": "verified" if i % 3 == 0 else "unverified",
        "platform": ["linux", "debian", "debian-12"],
        "updated_ts": float(i),
    }


def bench_store(n: int, queries: int, rng: np.random.Generator, hnsw: bool) -> None:
    vecs = unit_vectors(rng, n)
    qs = unit_vectors(rng, queries)
    with tempfile.TemporaryDirectory() as d:
        store = EdgeStore(Path(d) / "kb", DIM, indexed=INDEXED_FIELDS)
        # Bulk upsert in batches of 1000 (how import / starter load write).
        batch_times = []
        for start in range(0, n, 1000):
            pts = [(f"id-{i}", vecs[i], payload(i)) for i in range(start, min(n, start + 1000))]
            t = time.perf_counter()
            store.upsert(pts)
            batch_times.append(time.perf_counter() - t)
        bulk_rate = n / sum(batch_times)
        # Single-item upserts (how `commit` writes), into the full store.
        single = []
        extra = unit_vectors(rng, 200)
        for j in range(200):
            t = time.perf_counter()
            store.upsert([(f"new-{j}", extra[j], payload(j))])
            single.append(time.perf_counter() - t)
        base = np.empty((1000, DIM), np.float32)
        t = time.perf_counter()
        for _ in range(20):
            base[:] = vecs[:1000]
        np_batch = (time.perf_counter() - t) / 20

        # A tag (one item in five: selective) and the KB's default status filter (every item: broad).
        status_any = [FieldMatch.of("status", "verified", "unverified")]

        def run_searches(filtered: bool | str) -> list[float]:
            lat = []
            flt = status_any if filtered == "status" else [FieldMatch.of("tags", "nginx")] if filtered else []
            for q in qs:
                t = time.perf_counter()
                store.search(q, 10, flt)
                lat.append(time.perf_counter() - t)
            return lat

        # The old path first (Qdrant's own exact scan), then the matrix (built on its first search).
        store.close()
        store = EdgeStore(Path(d) / "kb", DIM, indexed=INDEXED_FIELDS, matrix=False)
        qdrant = run_searches(False)
        qdrant_f = run_searches(True)
        qdrant_s = run_searches("status")
        store.close()
        store = EdgeStore(Path(d) / "kb", DIM, indexed=INDEXED_FIELDS)
        t = time.perf_counter()
        store.search(qs[0], 10)
        build_s = time.perf_counter() - t
        exact = run_searches(False)
        exact_f = run_searches(True)
        exact_s = run_searches("status")
        approx: list[tuple[str, list[float]]] = []
        opt_s = recall = None
        if hnsw:
            t = time.perf_counter()
            store.optimize()  # build the HNSW index (the embedded engine runs optimizers on request)
            opt_s = time.perf_counter() - t
            store.close()
            store = EdgeStore(Path(d) / "kb", DIM, indexed=INDEXED_FIELDS, exact=False, hnsw_ef=128)
            approx = [
                ("search HNSW ef=128", run_searches(False)),
                ("search HNSW ef=128 + filter", run_searches(True)),
            ]
        # Baseline: brute-force numpy over the same vectors.
        allv = np.vstack([vecs, extra])
        brute = []
        for q in qs:
            t = time.perf_counter()
            scores = allv @ q
            top = np.argpartition(-scores, 10)[:10]
            top[np.argsort(-scores[top])]
            brute.append(time.perf_counter() - t)
        # Recall@10 of what the store returns against the exact answer.
        rec = []
        for q in qs[:50]:
            want = set(np.argsort(-(allv @ q))[:10].tolist())
            got = {
                int(h.id.split("-")[1]) + (n if h.id.startswith("new-") else 0) for h in store.search(q, 10)
            }
            rec.append(len(want & got) / 10)
        recall = statistics.mean(rec)
        store.close()

    b50, b99 = pct(brute, 50), pct(brute, 99)
    print(f"\n## {n:,} items (dim {DIM})")
    print(f"upsert bulk: {bulk_rate:,.0f} items/s; batch of 1000 p50 {pct(batch_times, 50):.1f} ms "
          f"p99 {pct(batch_times, 99):.1f} ms  (numpy copy of 1000: {np_batch * 1000:.3f} ms)")  # fmt: skip
    print(f"upsert one item: p50 {pct(single, 50):.2f} ms  p99 {pct(single, 99):.2f} ms")
    print(f"search baseline (numpy brute force): p50 {b50:.2f} ms  p99 {b99:.2f} ms")
    runs = [
        ("search old path (Qdrant exact scan)", qdrant, None),
        ("search old path + tag filter", qdrant_f, None),
        ("search old path + status filter (KB default)", qdrant_s, None),
        ("search exact (default: matrix)", exact, qdrant),
        ("search exact + tag filter (selective: Qdrant)", exact_f, qdrant_f),
        ("search exact + status filter (broad: matrix)", exact_s, qdrant_s),
        *((label, lat, None) for label, lat in approx),
    ]
    for label, lat, old in runs:
        p50, p99 = pct(lat, 50), pct(lat, 99)
        vs = f"; p99 x{p99 / pct(old, 99):.2f} of the old path" if old else ""
        print(f"{label}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  (p50 x{p50 / b50:.2f} of numpy{vs})")
    print(f"matrix build (first search of a process): {build_s * 1000:.0f} ms")
    if opt_s is not None:
        print(f"optimize (HNSW build): {opt_s:.2f} s")
    print(f"recall@10 of the store's answers vs exact numpy: {recall:.3f}")


def bench_embeddings() -> None:
    from fazai.knowledge.assets import MINILM, ensure_asset
    from fazai.knowledge.embeddings import MiniLMEmbedder
    from fazai.knowledge.starter import load_starter

    emb = MiniLMEmbedder(ensure_asset(MINILM, REPO / ".cache" / "assets"), blas_threads=1)
    sys.path.insert(0, str(REPO / "tests" / "knowledge"))
    from retrieval_questions import QUESTIONS

    questions = [q for q, _ in QUESTIONS] * 4  # 160 short operator questions
    recipes = [r.embed_text() for r in load_starter()]
    emb.embed(questions[:8])  # warm up
    print("\n## embeddings (all-MiniLM-L6-v2, numpy, 1 BLAS thread)")
    for label, texts in (("questions", questions), ("recipe texts", recipes)):
        t = time.perf_counter()
        emb.embed(texts)
        batched = len(texts) / (time.perf_counter() - t)
        emb.batch_size = 1
        t = time.perf_counter()
        emb.embed(texts[:40])
        single = 40 / (time.perf_counter() - t)
        emb.batch_size = 16
        print(f"{label}: batched {batched:.0f} sentences/s; one at a time {single:.0f} sentences/s "
              f"(batched x{batched / single:.2f})")  # fmt: skip
    lat = []
    for q in questions[:60]:
        t = time.perf_counter()
        emb.embed_one(q)
        lat.append(time.perf_counter() - t)
    print(f"query embedding latency: p50 {pct(lat, 50):.1f} ms  p99 {pct(lat, 99):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-embeddings", action="store_true")
    ap.add_argument(
        "--hnsw", action="store_true", help="also build the HNSW index (minutes at 100k) and time it"
    )
    a = ap.parse_args()
    # As in fazaid and `fazai agent` (knowledge/access.py): one BLAS thread. Several threads on a busy
    # 2-core machine made each small product wait for the others (p50 8 ms at 10k instead of 0.8).
    from fazai.knowledge.embeddings import set_blas_threads

    set_blas_threads(1)
    rng = np.random.default_rng(0)
    print("# bench_kb: embedded Qdrant (qdrant-edge) vs brute-force numpy; MiniLM embedding throughput")
    for n in (int(x) for x in a.sizes.split(",")):
        bench_store(n, a.queries, rng, a.hnsw)
    if not a.skip_embeddings:
        bench_embeddings()


if __name__ == "__main__":
    main()
