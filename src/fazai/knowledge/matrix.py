"""Exact cosine search over an in-memory matrix, kept in step with the embedded store's writes.

Qdrant's exact scan of plain segments took ~28 ms per query at 100k items (``bench/bench_kb.py``);
one float32 matrix-vector product over a contiguous, normalized matrix plus ``argpartition`` is the
floor for an exact answer. The matrix is built once per process from a scroll of the store and then
updated by this process's own upserts and deletes.

The daemon opens the embedded store for each operation (``access.py``: other processes need its
lock), so the matrix is kept per process, by folder, between opens. A *generation* file next to the
store (``<store>.gen``), rewritten before every write by any process, says whether the store changed
behind this process's back (``fazai kb verify`` from a shell, a crash half-way through a write):
then the matrix is built again. Filters on the indexed payload fields use per-value row sets; any
other filter is left to Qdrant (:meth:`MatrixIndex.can_filter`).

From :data:`APPROX_MIN_ROWS` rows on, a search scans short codes of the rows first and scores only
the best candidates exactly (:mod:`.approx`); below it (and until the codes are ready) it scans every
row. The projection is fitted in a background thread, never while a search waits, and the codes
follow every write.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fazai.knowledge import approx as approx_mod

# Below this many live rows the exact scan costs about what the codes' scan does (bench/bench_kb.py),
# and its recall is 1; from here on the codes answer.
APPROX_MIN_ROWS = 20_000
RETRY_BUILD_S = 60.0  # after a failed build of the codes
BUILD_IN_THREAD = True  # tests set it False to have the codes fitted inside the search that asks

# Process-wide: folder → its matrix (the store objects come and go, see the module docstring).
_INDEXES: dict[str, MatrixIndex] = {}
_INDEXES_LOCK = threading.Lock()


def _key(value: object) -> object:
    # True == 1 in a dict; Qdrant tells a bool from an int, so must we.
    return value if isinstance(value, str) else (type(value).__name__, value)


def _values(payload: dict[str, Any], field: str) -> list[object]:
    v = payload.get(field)
    if isinstance(v, list):
        return [_key(x) for x in v if isinstance(x, str | int | bool)]
    if isinstance(v, str | int | bool):
        return [_key(v)]
    return []


def gen_path(store_path: Path) -> Path:
    """The generation file of the store in ``store_path``."""
    return store_path.with_name(store_path.name + ".gen")


def read_generation(store_path: Path) -> str:
    """The store's current generation ("" when it was never written through FazAI's index)."""
    try:
        return gen_path(store_path).read_text().strip()
    except OSError:
        return ""


def new_generation(store_path: Path) -> str:
    """Write a new generation for the store (atomically); returns it. Done *before* a write."""
    gen = uuid.uuid4().hex
    path = gen_path(store_path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # like the rest of the state dir
    with os.fdopen(fd, "w") as f:
        f.write(gen)
    os.replace(tmp, path)
    return gen


class MatrixIndex:
    """Rows of unit vectors with their ids and indexed payload values; exact top-k by cosine."""

    def __init__(
        self, dim: int, fields: Sequence[str], generation: str, *, store_path: Path | None = None
    ) -> None:
        self.dim = dim
        self.store_path = store_path  # where the projection is kept (None: not kept)
        self.fields = tuple(fields)
        self.generation = generation
        self.lock = threading.RLock()  # re-entrant: a build in the caller's thread (tests) takes it
        self._vecs = np.zeros((0, dim), np.float32)
        self._n = 0  # rows in use (live or free)
        self._alive = np.zeros(0, bool)
        self._ids: list[str | None] = []
        self._row: dict[str, int] = {}
        self._free: list[int] = []
        # field → value → rows; the numpy form of a row set is made on first use, dropped on change.
        self._post: dict[str, dict[object, set[int]]] = {f: {} for f in self.fields}
        self._arr: dict[tuple[str, object], np.ndarray] = {}
        self._vals: list[dict[str, list[object]]] = []
        # The codes (None until fitted), and the rows written while a build runs (coded at its end).
        self.codes: approx_mod.Codes | None = None
        self._journal: set[int] | None = None
        self._builder: threading.Thread | None = None
        self._build_failed_at = 0.0
        self.build_seconds: float | None = None  # how long the last build of the codes took (the bench)

    def __len__(self) -> int:
        return len(self._row)

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors."""
        return int(self._vecs.nbytes)

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, points: Iterable[tuple[str, np.ndarray, dict[str, Any]]]) -> None:
        """Insert or replace ``(id, vector, payload)`` rows (vectors need not be normalized)."""
        touched: list[int] = []
        for pid, vec, payload in points:
            row = self._row.get(pid)
            if row is None:
                row = self._free.pop() if self._free else self._append_row()
                self._row[pid] = row
                self._ids[row] = pid
            else:
                self._unpost(row)
            v = np.asarray(vec, np.float32).reshape(-1)
            norm = float(np.linalg.norm(v))
            self._vecs[row] = v / norm if norm > 0 else v  # Qdrant scores a zero vector 0
            self._alive[row] = True
            vals = {f: _values(payload, f) for f in self.fields}
            self._vals[row] = vals
            for f, vs in vals.items():
                for value in vs:
                    self._post[f].setdefault(value, set()).add(row)
                    self._arr.pop((f, value), None)
            touched.append(row)
        self._codes_follow(touched, [])

    def delete(self, ids: Iterable[str]) -> None:
        """Remove these ids (unknown ones are ignored)."""
        gone: list[int] = []
        for pid in ids:
            row = self._row.pop(pid, None)
            if row is None:
                continue
            gone.append(row)
            self._unpost(row)
            self._alive[row] = False
            self._ids[row] = None
            self._vecs[row] = 0.0
            self._free.append(row)
        self._codes_follow([], gone)

    def _codes_follow(self, placed: list[int], removed: list[int]) -> None:
        # The codes follow written rows at once, so they are never behind the matrix; a build under
        # way codes them again when it ends (its snapshot may predate or tear these rows). Deleted
        # rows keep a stale code: searches skip rows that are not alive.
        if self._journal is not None:
            self._journal.update(placed)
            self._journal.update(removed)
        if self.codes is not None and placed:
            rows = np.asarray(sorted(set(placed)), np.int64)
            rows = rows[self._alive[rows]]
            self.codes.set(rows, self._vecs[rows])

    def _append_row(self) -> int:
        if self._n == len(self._vecs):
            cap = max(1024, 2 * len(self._vecs))
            vecs = np.zeros((cap, self.dim), np.float32)
            vecs[: self._n] = self._vecs[: self._n]
            alive = np.zeros(cap, bool)
            alive[: self._n] = self._alive[: self._n]
            self._vecs, self._alive = vecs, alive
        self._ids.append(None)
        self._vals.append({})
        self._n += 1
        return self._n - 1

    def _unpost(self, row: int) -> None:
        for f, vs in self._vals[row].items():
            for value in vs:
                rows = self._post[f].get(value)
                if rows is not None:
                    rows.discard(row)
                    if not rows:
                        del self._post[f][value]
                self._arr.pop((f, value), None)
        self._vals[row] = {}

    # -- search -----------------------------------------------------------------------------

    def can_filter(self, filters: Sequence[Any]) -> bool:
        """Whether every condition is on a field this index knows."""
        return all(f.key in self._post for f in filters)

    def _rows(self, field: str, value: object) -> np.ndarray:
        key = (field, _key(value))
        arr = self._arr.get(key)
        if arr is None:
            arr = np.fromiter(self._post[field].get(key[1], ()), np.int64)
            self._arr[key] = arr
        return arr

    def _mask(self, filters: Sequence[Any]) -> np.ndarray:
        mask = self._alive[: self._n].copy()
        for f in filters:
            hit = np.zeros(self._n, bool)
            for value in f.values:
                hit[self._rows(f.key, value)] = True
            mask &= hit
        return mask

    def search(
        self,
        vector: np.ndarray,
        k: int,
        filters: Sequence[Any] = (),
        *,
        approx: bool = True,
        min_rows: int = APPROX_MIN_ROWS,
    ) -> list[tuple[str, float]] | None:
        """The ``k`` best ``(id, cosine)`` among rows matching every filter, best first.

        With ``approx`` and at least ``min_rows`` live rows, only the candidates of the codes' scan are
        scored (once the codes are fitted; the first such search starts the fit, in the background,
        and scans everything meanwhile). The scores are exact either way.

        ``None`` for a selective filter (under a quarter of the rows): Qdrant's payload index scores
        only those rows, faster than a gather of them here (``bench/bench_kb.py``: 4.6 vs 8.6 ms at
        100k items, one tag in five); the KB's usual filter (status verified or unverified) is broad.
        """
        n = self._n
        if k <= 0 or n == 0:
            return []
        q = np.asarray(vector, np.float32).reshape(-1)
        norm = float(np.linalg.norm(q))
        if norm > 0:
            q = q / norm
        mask = None
        live = len(self._row)
        if filters:
            mask = self._mask(filters)
            live = int(np.count_nonzero(mask))
            if live == 0:
                return []
            if live * 4 < n:
                return None
        k = min(k, live)
        if k == 0:
            return []
        if approx and len(self._row) >= min_rows:
            self._start_build_if_due()
            codes = self.codes
            if codes is not None and codes.usable:
                keep = mask if mask is not None else (self._alive[:n] if len(self._row) < n else None)
                count = max(approx_mod.CANDIDATES, approx_mod.RERANK_PER_K * k)
                rows = codes.candidates(q, n, keep, count)
                return self._top(self._vecs[rows] @ q, rows, k)
        elif approx and self.codes is not None and len(self._row) * 2 < min_rows:
            self.codes = None  # the store shrank: the scan is as fast, stop following writes
        if mask is not None:
            rows = np.flatnonzero(mask)
            scores = (self._vecs[:n] @ q)[rows]
        else:
            scores = self._vecs[:n] @ q
            rows = None
            if len(self._row) < n:  # deleted rows never win
                scores[~self._alive[:n]] = -np.inf
        return self._top(scores, rows, k)

    def _top(self, scores: np.ndarray, rows: np.ndarray | None, k: int) -> list[tuple[str, float]]:
        k = min(k, len(scores))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        out = []
        for i in top:
            row = int(rows[i]) if rows is not None else int(i)
            pid = self._ids[row]
            if pid is not None:
                out.append((pid, float(scores[i])))
        return out

    # -- the codes' (re)build, in a background thread -------------------------------------------

    def _start_build_if_due(self) -> None:
        """Start fitting the codes when there are none or their axes aged (called under ``lock``)."""
        if self._builder is not None or (self.codes is not None and not self.codes.stale(len(self._row))):
            return
        if time.monotonic() - self._build_failed_at < RETRY_BUILD_S:
            return
        alive = np.flatnonzero(self._alive[: self._n])
        self._journal = set()
        first = self.codes is None
        self._builder = threading.Thread(
            target=self._build, args=(self._vecs, alive, first), name="fazai-kb-codes", daemon=True
        )
        if BUILD_IN_THREAD:
            self._builder.start()
        else:
            self._build(self._vecs, alive, first)

    def _build(self, vecs: np.ndarray, rows: np.ndarray, first: bool) -> None:
        # Reads the matrix without the lock: rows written meanwhile are in the journal and are coded
        # again, from the matrix as it is then, under the lock at the end.
        t0 = time.perf_counter()
        try:
            kept = None
            if first and self.store_path is not None:
                kept = approx_mod.load_axes(self.store_path, self.dim)
            if kept is None:
                rng = np.random.default_rng(len(rows))
                sample = np.sort(rng.choice(rows, min(len(rows), approx_mod.SAMPLE), replace=False))
                kept = approx_mod.train(vecs[sample])
                if self.store_path is not None:
                    approx_mod.save_axes(self.store_path, *kept)
            codes = approx_mod.Codes(*kept, capacity=len(vecs))
            codes.fill(vecs, rows)
            codes.check(vecs, rows, np.random.default_rng(7))
            with self.lock:
                again = np.asarray(sorted(self._journal or ()), np.int64)
                again = again[again < self._n]
                again = again[self._alive[again]]
                codes.set(again, self._vecs[again])
                codes.changes = 0
                self.codes = codes
                self.build_seconds = time.perf_counter() - t0
        except Exception:  # never let a build take the process down; the exact scan still answers
            self._build_failed_at = time.monotonic()
        finally:
            with self.lock:
                self._journal = None
                self._builder = None

    def wait_approx(self, timeout: float | None = None) -> bool:
        """Wait for a running build of the codes; whether codes are in place (tests, the benchmark)."""
        builder = self._builder
        if builder is not None and builder.is_alive():
            builder.join(timeout)
        return self.codes is not None and self.codes.usable


def cached(path: Path) -> MatrixIndex | None:
    """This process's matrix of the store in ``path``, if it has one."""
    with _INDEXES_LOCK:
        return _INDEXES.get(str(path.resolve()))


def remember(path: Path, index: MatrixIndex | None) -> None:
    """Keep (or, with ``None``, drop) this process's matrix of the store in ``path``."""
    with _INDEXES_LOCK:
        if index is None:
            _INDEXES.pop(str(path.resolve()), None)
        else:
            _INDEXES[str(path.resolve())] = index
