"""Knowledge-base benchmark: embedded store upsert/search latency at 1k/10k/100k items, embedding throughput.

Baselines measured in the same run:
- search: brute-force numpy (one matrix-vector product + argpartition) over the same vectors, and the
  old path, Qdrant's own exact scan (``EdgeStore(matrix=False)``);
- search through the approximate first stage (``fazai.knowledge.approx``, forced on at every size,
  then the default, which turns it on from ``APPROX_MIN_ROWS``) against the exact matrix (codes off):
  p50/p99 and recall@5/@10 of the same queries against the exact answers, in the same run;
- upsert: writing the same batch into a numpy array (the floor for "storing" vectors);
- embeddings: the same sentences one at a time (batch size 1) vs batched.

Data (``--data``): ``clustered``, synthetic vectors with topic structure shaped after MiniLM embeddings
of the starter KB (see :class:`Clustered`; not real text), and ``uniform``, random unit vectors (no
structure at all: the worst case for any approximate index). Then real MiniLM embeddings of this
machine's man-page descriptions (``man -k .``, ~3k, embedded once and cached in .cache/bench), with the
40 operator questions of the retrieval tests and held-out descriptions as queries.

Run: .venv/bin/python bench/bench_kb.py [--sizes 1000,10000,100000] [--queries 200] [--data clustered,uniform]
     [--skip-old] [--skip-real] [--skip-embeddings] [--hnsw]
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

from fazai.knowledge import approx as approx_mod  # noqa: E402
from fazai.knowledge import matrix as matrix_mod  # noqa: E402
from fazai.knowledge.kb import INDEXED_FIELDS  # noqa: E402
from fazai.knowledge.matrix import MatrixIndex  # noqa: E402
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


class Clustered:
    """Synthetic embeddings with topic structure, shaped after MiniLM embeddings of the starter KB.

    Measured on the 133 starter recipes (all-MiniLM-L6-v2): mean pairwise cosine 0.17, a recipe's
    nearest other recipe 0.62 on average, an operator question's best recipe 0.62 (top 5: 0.38).
    Here: a shared direction (cosine 0.17 between any two items), 200 areas of 10 topics each,
    items of one topic at cosine ~0.55 and of one area at ~0.30, the rest isotropic noise. Queries are
    drawn the same way (a question is about some topic). Not real text: docs/performance.md says so.
    """

    AREAS, TOPICS = 200, 10
    W_SHARED, W_AREA, W_TOPIC, W_NOISE = 0.17, 0.13, 0.25, 0.45

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.shared = unit_vectors(rng, 1)[0]
        self.areas = unit_vectors(rng, self.AREAS)
        self.topics = unit_vectors(rng, self.AREAS * self.TOPICS)

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        t = self.rng.integers(0, len(self.topics), n)
        noise = self.rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
        v = (
            np.sqrt(self.W_SHARED) * self.shared
            + np.sqrt(self.W_AREA) * self.areas[t // self.TOPICS]
            + np.sqrt(self.W_TOPIC) * self.topics[t]
            + np.sqrt(self.W_NOISE) * noise
        )
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def payload(i: int) -> dict[str, object]:
    return {
        "title": f"item {i}",
        "tags": [TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]],
        "status": "verified" if i % 3 == 0 else "unverified",
        "platform": ["linux", "debian", "debian-12"],
        "updated_ts": float(i),
    }


def recall(want: list[list[str]], got: list[list[str]], k: int) -> float:
    """Mean recall@k of ``got`` against ``want`` (exact answers), query by query."""
    pairs = zip(want, got, strict=True)
    return statistics.mean(len(set(w[:k]) & set(g[:k])) / max(1, len(w[:k])) for w, g in pairs)


def bench_store(n: int, queries: int, rng: np.random.Generator, hnsw: bool, data: str, old: bool) -> None:
    gen = Clustered(rng) if data == "clustered" else unit_vectors
    vecs = gen(rng, n)
    qs = gen(rng, queries)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "kb"
        store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS)
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
        extra = gen(rng, 200)
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
        answers: dict[str, list[list[str]]] = {}

        def run_searches(filtered: bool | str, name: str = "", k: int = 10) -> list[float]:
            lat = []
            flt = status_any if filtered == "status" else [FieldMatch.of("tags", "nginx")] if filtered else []
            got = answers.setdefault(f"{name}/{filtered}", [])
            for q in qs:
                t = time.perf_counter()
                hits = store.search(q, k, flt)
                lat.append(time.perf_counter() - t)
                got.append([h.id for h in hits])
            return lat

        runs: list[tuple[str, list[float], list[float] | None]] = []
        store.close()
        qdrant: list[float] | None = None
        if old:  # the old path first (Qdrant's own exact scan)
            store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS, matrix=False)
            qdrant = run_searches(False)
            runs += [
                ("search old path (Qdrant exact scan)", qdrant, None),
                ("search old path + tag filter", run_searches(True), None),
                ("search old path + status filter (KB default)", run_searches("status"), None),
            ]
            store.close()
        # Exact: the matrix (built on its first search) with the codes off.
        store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS, approx=False)
        t = time.perf_counter()
        store.search(qs[0], 10)
        build_s = time.perf_counter() - t
        exact = run_searches(False, "exact")
        runs += [
            ("search exact (matrix, codes off)", exact, qdrant),
            ("search exact + tag filter (selective: Qdrant)", run_searches(True, "exact"), None),
            ("search exact + status filter (broad: matrix)", run_searches("status", "exact"), None),
        ]
        store.close()
        # The codes' first stage, forced on at every size (approx_min_rows=1): fitted in the background
        # on its first search (which the exact scan answers meanwhile), then every search uses it.
        store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS, approx_min_rows=1)
        t = time.perf_counter()
        store.search(qs[0], 10)
        first_s = time.perf_counter() - t
        idx = matrix_mod.cached(path)
        assert idx is not None
        used = idx.wait_approx(600)
        assert idx.codes is not None, "the codes were not built"
        check = idx.codes.recall or 0.0
        codes_build = idx.build_seconds or 0.0
        label = f"codes ({approx_mod.CODE_DIM} dims, {approx_mod.CANDIDATES} re-ranked)"
        if not used:
            label += f" [not used: self-check recall {check:.2f}; these are exact scans]"
        coded = run_searches(False, "codes")
        runs += [
            (f"search {label}", coded, exact),
            ("search codes + status filter", run_searches("status", "codes"), None),
        ]
        store.close()
        # A new process: no matrix in memory, the axes kept next to the store (only coding, no fit).
        matrix_mod.remember(path, None)
        store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS, approx_min_rows=1)
        t = time.perf_counter()
        store.search(qs[0], 10)
        restart_matrix_s = time.perf_counter() - t
        idx = matrix_mod.cached(path)
        assert idx is not None
        idx.wait_approx(600)
        restart_codes_s = idx.build_seconds or 0.0
        store.close()
        # The default: exact below APPROX_MIN_ROWS, the codes from there on (coded above).
        store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS)
        default = run_searches(False, "default")
        which = "codes" if used and n + 200 >= matrix_mod.APPROX_MIN_ROWS else "exact"
        runs.append((f"search default ({which} at this size)", default, exact))
        approx: list[tuple[str, list[float]]] = []
        opt_s = None
        if hnsw:
            t = time.perf_counter()
            store.optimize()  # build the HNSW index (the embedded engine runs optimizers on request)
            opt_s = time.perf_counter() - t
            store.close()
            store = EdgeStore(path, DIM, indexed=INDEXED_FIELDS, exact=False, hnsw_ef=128)
            approx = [
                ("search HNSW ef=128", run_searches(False, "hnsw")),
                ("search HNSW ef=128 + filter", run_searches(True, "hnsw")),
            ]
        store.close()
        # Baseline: brute-force numpy over the same vectors; and the exact answers, to check the matrix.
        allv = np.vstack([vecs, extra])
        names = [f"id-{i}" for i in range(n)] + [f"new-{j}" for j in range(200)]
        brute = []
        truth = []
        for q in qs:
            t = time.perf_counter()
            scores = allv @ q
            top = np.argpartition(-scores, 10)[:10]
            top = top[np.argsort(-scores[top])]
            brute.append(time.perf_counter() - t)
            truth.append([names[i] for i in top])

    b50, b99 = pct(brute, 50), pct(brute, 99)
    print(f"\n## {n:,} items (dim {DIM}, {data} data)")
    print(f"upsert bulk: {bulk_rate:,.0f} items/s; batch of 1000 p50 {pct(batch_times, 50):.1f} ms "
          f"p99 {pct(batch_times, 99):.1f} ms  (numpy copy of 1000: {np_batch * 1000:.3f} ms)")  # fmt: skip
    print(f"upsert one item: p50 {pct(single, 50):.2f} ms  p99 {pct(single, 99):.2f} ms")
    print(f"search baseline (numpy brute force): p50 {b50:.2f} ms  p99 {b99:.2f} ms")
    for label, lat, ref in runs + [(label, lat, None) for label, lat in approx]:
        p50, p99 = pct(lat, 50), pct(lat, 99)
        vs = f"; p99 x{p99 / pct(ref, 99):.2f} of exact" if ref is exact and ref else ""
        vs = f"; p99 x{p99 / pct(ref, 99):.2f} of the old path" if ref is qdrant and ref else vs
        print(f"{label}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  (p50 x{p50 / b50:.2f} of numpy{vs})")
    print(f"matrix build (first search of a process, a scroll of every vector): {build_s * 1000:.0f} ms")
    print(f"codes build (background thread; the search that started it took {first_s * 1000:.1f} ms): "
          f"{codes_build:.2f} s; self-check recall@10 {check:.3f}, "
          f"{'used' if used else 'not used'}")  # fmt: skip
    print(f"a new process: matrix build {restart_matrix_s:.2f} s, then codes from the kept axes "
          f"{restart_codes_s:.2f} s (background)")  # fmt: skip
    if opt_s is not None:
        print(f"optimize (HNSW build): {opt_s:.2f} s")
    ex = answers["exact/False"]
    print(f"exact matrix vs numpy: recall@10 {recall(truth, ex, 10):.3f}")
    for name in ("codes", "default", "hnsw"):
        if f"{name}/False" in answers:
            got = answers[f"{name}/False"]
            line = f"recall {name} vs exact, same run: @5 {recall(ex, got, 5):.3f}"
            line += f"  @10 {recall(ex, got, 10):.3f}"
            if f"{name}/status" in answers:
                r5 = recall(answers["exact/status"], answers[f"{name}/status"], 5)
                line += f"; + status filter @5 {r5:.3f}"
            print(line)


def bench_real(queries: int) -> None:
    """The codes on real MiniLM embeddings: the one-line descriptions of this machine's man pages."""
    import subprocess

    from fazai.knowledge.assets import MINILM, ensure_asset
    from fazai.knowledge.embeddings import MiniLMEmbedder

    out = subprocess.run(["man", "-k", "."], capture_output=True, text=True, check=False).stdout
    lines = sorted({ln.split(" - ", 1)[1].strip() for ln in out.splitlines() if " - " in ln})
    lines = [ln for ln in lines if ln and "unknown subject" not in ln]
    if len(lines) < 2000:
        print(f"\n## real embeddings: skipped (only {len(lines)} man-page descriptions here)")
        return
    cache = REPO / ".cache" / "bench" / f"whatis-{len(lines)}.npy"
    if cache.exists():
        emb_all = np.load(cache)
    else:
        emb = MiniLMEmbedder(ensure_asset(MINILM, REPO / ".cache" / "assets"), blas_threads=1)
        print(f"(embedding {len(lines)} man-page descriptions once, cached in {cache})", flush=True)
        emb_all = emb.embed(lines)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb_all)
    sys.path.insert(0, str(REPO / "tests" / "knowledge"))
    from retrieval_questions import QUESTIONS

    rng = np.random.default_rng(1)
    held = rng.choice(len(lines), min(queries, len(lines) // 10), replace=False)
    keep = np.setdiff1d(np.arange(len(lines)), held)
    emb = MiniLMEmbedder(ensure_asset(MINILM, REPO / ".cache" / "assets"), blas_threads=1)
    qs = np.vstack([emb.embed([q for q, _ in QUESTIONS]), emb_all[held]])
    idx = MatrixIndex(DIM, (), "bench")
    idx.upsert((f"m-{i}", emb_all[i], {}) for i in keep)
    idx.search(qs[0], 5, min_rows=1)
    used = idx.wait_approx(600)
    exact, approx, lat_e, lat_a = [], [], [], []
    for q in qs:
        t = time.perf_counter()
        exact.append([i for i, _ in idx.search(q, 10, approx=False) or []])
        lat_e.append(time.perf_counter() - t)
        t = time.perf_counter()
        approx.append([i for i, _ in idx.search(q, 10, min_rows=1) or []])
        lat_a.append(time.perf_counter() - t)
    nq = len(QUESTIONS)
    check = idx.codes.recall if idx.codes else None
    print(f"\n## real embeddings: {len(keep):,} man-page descriptions (MiniLM), codes forced on "
          f"(self-check recall@10 {check}, {'used' if used else 'NOT used'})")  # fmt: skip
    print(f"exact p50 {pct(lat_e, 50):.2f} ms "
          f"p99 {pct(lat_e, 99):.2f} ms; codes p50 {pct(lat_a, 50):.2f} ms "
          f"p99 {pct(lat_a, 99):.2f} ms")  # fmt: skip
    print(f"recall vs exact, {nq} operator questions: @5 {recall(exact[:nq], approx[:nq], 5):.3f}; "
          f"{len(held)} held-out descriptions: @5 {recall(exact[nq:], approx[nq:], 5):.3f}  "
          f"@10 {recall(exact[nq:], approx[nq:], 10):.3f}")  # fmt: skip


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
    ap.add_argument("--data", default="clustered,uniform", help="clustered (topic structure) and/or uniform")
    ap.add_argument("--skip-old", action="store_true", help="skip the old path (Qdrant's own scan)")
    ap.add_argument("--skip-real", action="store_true", help="skip the man-page (real embeddings) check")
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
    for data in a.data.split(","):
        for n in (int(x) for x in a.sizes.split(",")):
            bench_store(n, a.queries, rng, a.hnsw, data, not a.skip_old)
    if not a.skip_real:
        bench_real(a.queries)
    if not a.skip_embeddings:
        bench_embeddings()


if __name__ == "__main__":
    main()
