"""A projected first stage for :class:`fazai.knowledge.matrix.MatrixIndex`: scan short codes, re-rank exactly.

An exact search reads the whole float32 matrix (154 MB at 100k × 384): ~10 ms on a quiet core of the
build machine, 40-70 ms at p99 under load, bound by memory bandwidth (``bench/bench_kb.py``). Here each
row also has a *code*: its vector minus the mean of the stored vectors, projected on their first
:data:`CODE_DIM` principal axes (an SVD of a sample). A search scores every code (a sixth of the bytes),
keeps the best :data:`CANDIDATES` rows and scores those exactly with their float32 vectors, so the
scores returned are exact and only a true neighbour whose code ranks it below the candidates is missed.
``x·q = (x-μ)·q + μ·q`` and ``μ·q`` is the same for every row, so codes of centred vectors rank rows as
``x·q`` does, up to the variance the projection drops.

Why not an IVF (k-means lists, probe the nearest few): on real MiniLM embeddings of man-page
descriptions it needed a fifth of the rows probed for recall@5 ≥ 0.95, and the gather of those rows
cost more than this scan (docs/performance.md has the figures). Text embeddings keep most of their
variance in a few dozen directions; random vectors do not, and there this stage's recall is poor: the
benchmark prints both.

Codes follow every write of the matrix at once (:meth:`Codes.set`), so the stage is never behind the
matrix; only the axes age as the data drifts, which costs recall, not correctness, and a retrain (in
a background thread, see ``MatrixIndex``) replaces them. Axes are kept next to the store
(``<store>.axes.npy``) so a new process only projects its rows (one product) instead of training.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

CODE_DIM = 64  # 256 bytes a row, a sixth of a 384-dim float32 row
CANDIDATES = 256  # rows re-ranked exactly, at least RERANK_PER_K × k
RERANK_PER_K = 20
SAMPLE = 20_000  # rows in the SVD's sample
CHUNK = 8192  # rows projected per product (bounded temporaries)
# The check after each fit: stored rows used as queries (their own row left out), recall@10 of the
# codes' answers against the exact ones. Below MIN_RECALL the codes are kept but not used: data
# without a few dominant directions (random vectors) stays exact, at the exact scan's cost.
CHECK_QUERIES = 32
MIN_RECALL = 0.9


def train(sample: np.ndarray, code_dim: int = CODE_DIM) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the first ``code_dim`` principal axes (dim × code_dim) of ``sample``'s rows."""
    mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    axes = np.ascontiguousarray(vt[: min(code_dim, len(vt))].T, np.float32)
    return mean, axes


class Codes:
    """The projection (mean, axes) and one code per row of the matrix, by row number."""

    def __init__(self, mean: np.ndarray, axes: np.ndarray, capacity: int) -> None:
        self.mean = np.ascontiguousarray(mean, np.float32)
        self.axes = np.ascontiguousarray(axes, np.float32)
        self.codes = np.zeros((capacity, self.axes.shape[1]), np.float32)
        self.changes = 0  # rows coded since the axes were trained or loaded
        self.built_rows = 0
        self.recall: float | None = None  # measured by :meth:`check` (None: not checked)

    @property
    def usable(self) -> bool:
        """Whether searches may use these codes (their measured recall is good enough)."""
        return self.recall is not None and self.recall >= MIN_RECALL

    def project(self, vecs: np.ndarray) -> np.ndarray:
        """The codes of these unit vectors."""
        return (vecs - self.mean) @ self.axes

    def fill(self, vecs: np.ndarray, rows: np.ndarray) -> None:
        """Code ``vecs[rows]`` a chunk at a time (no copy of the whole matrix)."""
        for start in range(0, len(rows), CHUNK):
            part = rows[start : start + CHUNK]
            self.codes[part] = self.project(vecs[part])
        self.built_rows = len(rows)

    def set(self, rows: np.ndarray, vecs: np.ndarray) -> None:
        """(Re)code ``rows`` whose unit vectors are ``vecs`` (the matrix may have grown)."""
        if len(rows) == 0:
            return
        need = int(rows.max()) + 1
        if need > len(self.codes):
            grown = np.zeros((max(need, 2 * len(self.codes)), self.codes.shape[1]), np.float32)
            grown[: len(self.codes)] = self.codes
            self.codes = grown
        self.codes[rows] = self.project(vecs)
        self.changes += len(rows)

    def candidates(self, q: np.ndarray, n: int, keep: np.ndarray | None, count: int) -> np.ndarray:
        """Up to ``count`` rows among the first ``n`` (only where ``keep``) whose codes score best."""
        scores = self.codes[:n] @ (q @ self.axes)
        if keep is not None:
            scores[~keep] = -np.inf
            count = min(count, int(np.count_nonzero(keep)))
        if count <= 0:
            return np.zeros(0, np.int64)
        if count >= n:
            return np.flatnonzero(keep) if keep is not None else np.arange(n)
        return np.argpartition(-scores, count - 1)[:count]

    def check(self, vecs: np.ndarray, rows: np.ndarray, rng: np.random.Generator, k: int = 10) -> float:
        """Measure recall@k on stored rows used as queries (leaving their own row out); keep it."""
        if len(rows) <= k + 1:
            self.recall = 1.0
            return self.recall
        picks = rng.choice(len(rows), min(CHECK_QUERIES, len(rows)), replace=False)
        queries = vecs[rows[picks]]
        exact = np.empty((len(rows), len(picks)), np.float32)
        for start in range(0, len(rows), CHUNK):  # one pass over the matrix for every query
            exact[start : start + CHUNK] = vecs[rows[start : start + CHUNK]] @ queries.T
        exact[picks, np.arange(len(picks))] = -np.inf
        keep = np.zeros(int(rows.max()) + 1, bool)
        keep[rows] = True
        count = max(CANDIDATES, RERANK_PER_K * k)
        found = 0
        for j, i in enumerate(picks):
            want = set(rows[np.argpartition(-exact[:, j], k)[:k]].tolist())
            keep[rows[i]] = False
            cand = self.candidates(queries[j], len(keep), keep, count)
            keep[rows[i]] = True
            got = cand[np.argsort(-(vecs[cand] @ queries[j]))[:k]]
            found += len(want & set(got.tolist()))
        self.recall = found / (k * len(picks))
        return self.recall

    def stale(self, live: int) -> bool:
        """Whether the axes were fitted to too different a set of rows (fit them again)."""
        return self.changes > max(1000, self.built_rows // 2) or live > 2 * max(self.built_rows, 1)


# -- axes kept next to the store ----------------------------------------------------------------


def axes_path(store_path: Path) -> Path:
    """Where the projection of the store in ``store_path`` is kept."""
    return store_path.with_name(store_path.name + ".axes.npy")


def load_axes(store_path: Path, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept projection (mean, axes) for this dimension, else ``None``.

    The file only saves training time: every row is coded again from the matrix, so an old file
    costs recall at worst (and ages out like any projection), never a wrong score.
    """
    try:
        both = np.load(axes_path(store_path), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if both.ndim != 2 or both.shape[0] != dim or both.shape[1] < 2 or both.dtype != np.float32:
        return None
    if not np.isfinite(both).all():
        return None
    return np.ascontiguousarray(both[:, 0]), np.ascontiguousarray(both[:, 1:])


def save_axes(store_path: Path, mean: np.ndarray, axes: np.ndarray) -> None:
    """Keep the projection (atomically, 0600 like the rest of the state dir); failures are ignored."""
    path = axes_path(store_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.column_stack([mean, axes]).astype(np.float32), allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        # A read-only or full disk: the next process trains again, nothing else is lost.
        with contextlib.suppress(OSError):
            tmp.unlink()
