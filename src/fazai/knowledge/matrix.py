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
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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

    def __init__(self, dim: int, fields: Sequence[str], generation: str):
        self.dim = dim
        self.fields = tuple(fields)
        self.generation = generation
        self.lock = threading.Lock()
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

    def __len__(self) -> int:
        return len(self._row)

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors."""
        return int(self._vecs.nbytes)

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, points: Iterable[tuple[str, np.ndarray, dict[str, Any]]]) -> None:
        """Insert or replace ``(id, vector, payload)`` rows (vectors need not be normalized)."""
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

    def delete(self, ids: Iterable[str]) -> None:
        """Remove these ids (unknown ones are ignored)."""
        for pid in ids:
            row = self._row.pop(pid, None)
            if row is None:
                continue
            self._unpost(row)
            self._alive[row] = False
            self._ids[row] = None
            self._vecs[row] = 0.0
            self._free.append(row)

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
        self, vector: np.ndarray, k: int, filters: Sequence[Any] = ()
    ) -> list[tuple[str, float]] | None:
        """The ``k`` best ``(id, cosine)`` among rows matching every filter, best first.

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
        if filters:
            rows = np.flatnonzero(self._mask(filters))
            if len(rows) == 0:
                return []
            if len(rows) * 4 < n:
                return None
            scores = (self._vecs[:n] @ q)[rows]
        else:
            scores = self._vecs[:n] @ q
            rows = None
            if len(self._row) < n:  # deleted rows never win
                scores[~self._alive[:n]] = -np.inf
        live = len(scores) if rows is not None else len(self._row)
        k = min(k, live)
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
