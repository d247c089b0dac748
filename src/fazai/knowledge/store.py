"""Vector stores behind one protocol: embedded Qdrant (``qdrant-edge-py``) or a Qdrant server.

Both implementations pass the same contract tests (``tests/knowledge/test_kb_store_contract.py``).
Ids are arbitrary strings for callers; Qdrant only accepts integers or UUIDs, so each id is mapped to
a deterministic UUIDv5 and kept in the payload under ``_id`` to be handed back.

The embedded store takes an exclusive lock on its folder: one process per store (the daemon owns it).
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fazai.knowledge import matrix as matrix_mod
from fazai.knowledge.matrix import MatrixIndex, new_generation, read_generation

_ID_KEY = "_id"
_NS = uuid.UUID("5b0c1f4e-8a51-4c5e-9e0c-6a7a7f0f4a11")  # FazAI's namespace for point ids


class StoreError(RuntimeError):
    """The vector store failed; the message says what to do."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store."""


@dataclass(frozen=True)
class FieldMatch:
    """Filter condition: payload field ``key`` equals one of ``values`` (for a list field: contains one).

    A filter is a sequence of conditions that must all hold.
    """

    key: str
    values: tuple[str | int | bool, ...]

    @classmethod
    def of(cls, key: str, *values: str | int | bool) -> FieldMatch:
        """``FieldMatch.of("tags", "nginx")``."""
        if not values:
            raise ValueError(f"filter on {key!r} needs at least one value")
        return cls(key, tuple(values))


@dataclass
class StoredPoint:
    """A point as stored: its id, payload and (when asked for) vector."""

    id: str
    payload: dict[str, Any]
    vector: list[float] | None = None


@dataclass
class ScoredPoint:
    """A search hit: cosine similarity in ``score``."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VectorStore(Protocol):
    """What the knowledge base needs from a vector store (cosine similarity)."""

    dim: int

    def upsert(self, points: Sequence[tuple[str, Sequence[float] | np.ndarray, dict[str, Any]]]) -> None:
        """Insert or replace points given as ``(id, vector, payload)``."""
        ...

    def search(
        self, vector: Sequence[float] | np.ndarray, k: int, filters: Sequence[FieldMatch] = ()
    ) -> list[ScoredPoint]:
        """The ``k`` nearest points that match every filter, best first."""
        ...

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """The points with these ids, in the order asked; unknown ids are skipped."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove these points (unknown ids are ignored)."""
        ...

    def count(self, filters: Sequence[FieldMatch] = ()) -> int:
        """How many points match every filter."""
        ...

    def scroll(
        self, filters: Sequence[FieldMatch] = (), *, batch: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every matching point, in pages of ``batch``."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...


@functools.lru_cache(maxsize=1 << 16)
def point_uuid(item_id: str) -> str:
    """The Qdrant point id (UUIDv5) for a caller's string id."""
    return str(uuid.uuid5(_NS, item_id))


def _vec(v: Sequence[float] | np.ndarray, dim: int) -> list[float]:
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise StoreError(f"vector has {arr.shape[0]} dimensions, the store expects {dim}")
    return arr.tolist()


def _unwrap(payload: dict[str, Any] | None, fallback_id: object) -> tuple[str, dict[str, Any]]:
    p = dict(payload or {})
    return str(p.pop(_ID_KEY, fallback_id)), p


# --------------------------------------------------------------------------- embedded (qdrant-edge)


class EdgeStore:
    """Embedded Qdrant (``qdrant-edge-py``) in a folder; one process at a time.

    ``indexed`` payload fields get a keyword index so filtered search stays fast as the store grows.
    Search is exact by default, over an in-memory matrix kept per process (:mod:`.matrix`: one
    matrix-vector product instead of Qdrant's scan, ~1.5x faster at 100k items, more with a filter;
    ``matrix=False`` asks Qdrant). From ``approx_min_rows`` items on (default
    :data:`fazai.knowledge.matrix.APPROX_MIN_ROWS`), the matrix answers through a first stage
    (:mod:`.approx`: short codes of every row scanned, the best candidates scored exactly);
    ``approx=False`` keeps every search exact. The HNSW index built by :meth:`optimize` had poor
    recall in ``bench/bench_kb.py``; ``exact=False`` with ``hnsw_ef`` trades recall for speed (and
    skips the matrix).
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        indexed: Sequence[str] = (),
        exact: bool = True,
        hnsw_ef: int | None = None,
        matrix: bool = True,
        approx: bool = True,
        approx_min_rows: int = matrix_mod.APPROX_MIN_ROWS,
    ) -> None:
        import qdrant_edge as qe

        self._approx = approx
        self._approx_min_rows = approx_min_rows
        self._qe = qe
        self._indexed = tuple(indexed)
        self._use_matrix = matrix and exact
        self._params = qe.SearchParams(exact=exact, hnsw_ef=hnsw_ef)
        self.path = Path(path)
        self.dim = dim
        self.path.mkdir(parents=True, exist_ok=True)
        fresh = not any(self.path.iterdir())
        try:
            if fresh:
                cfg = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
                self._shard = qe.EdgeShard.create(str(self.path), cfg)
            else:
                self._shard = qe.EdgeShard.load(str(self.path))
        except Exception as e:  # the binding raises plain Exception
            msg = str(e)
            if "WouldBlock" in msg or "lock" in msg.lower():
                raise StoreLockedError(
                    f"the knowledge base at {self.path} is open in another process (fazaid and "
                    "`fazai agent` hold it while they read or write); retry, or use open_edge_store to wait"
                ) from e
            raise StoreError(f"cannot open the knowledge base at {self.path}: {msg}") from e
        stored_dim = self._stored_dim()
        if stored_dim is not None and stored_dim != dim:
            self._shard.close()
            raise StoreError(f"the store at {self.path} holds {stored_dim}-dim vectors, not {dim}")
        existing = set(self._shard.info().payload_schema)
        for name in indexed:
            if name not in existing:
                self._shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))

    def _stored_dim(self) -> int | None:
        recs, _ = self._shard.scroll(self._qe.ScrollRequest(limit=1, with_payload=False, with_vector=True))
        if recs and isinstance(recs[0].vector, list):
            return len(recs[0].vector)
        return None

    def _filter(self, filters: Sequence[FieldMatch]) -> Any:
        qe = self._qe
        if not filters:
            return None
        conds = [qe.FieldCondition(key=f.key, match=qe.MatchAny(any=list(f.values))) for f in filters]
        return qe.Filter(must=conds)

    # -- the in-memory matrix (see fazai.knowledge.matrix) ------------------------------------

    def _matrix(self) -> MatrixIndex | None:
        """This process's matrix of the store, built (from a scroll) when missing or out of date."""
        if not self._use_matrix:
            return None
        gen = read_generation(self.path)
        idx = matrix_mod.cached(self.path)
        fits = idx is not None and idx.dim == self.dim and idx.fields == self._indexed
        if fits and gen and idx is not None and idx.generation == gen:
            return idx
        if not gen:  # written by a FazAI without the matrix: from now on, writes are tracked
            gen = new_generation(self.path)
        idx = MatrixIndex(self.dim, self._indexed, gen, store_path=self.path)
        rows = ((p.id, p.vector, p.payload) for p in self.scroll(batch=1024, with_vectors=True))
        idx.upsert((i, np.asarray(v or np.zeros(self.dim), np.float32), pl) for i, v, pl in rows)
        matrix_mod.remember(self.path, idx)
        return idx

    def _write(self, op: Any, apply: Callable[[MatrixIndex], None]) -> None:
        # The generation changes before the write: a crash half-way leaves a matrix that no process
        # trusts. This process's own matrix, when current, follows the write instead of being rebuilt.
        idx = matrix_mod.cached(self.path)
        current = idx is not None and idx.generation == read_generation(self.path)
        gen = new_generation(self.path)
        try:
            self._shard.update(op)
        except Exception:
            matrix_mod.remember(self.path, None)
            raise
        if idx is not None and current:
            with idx.lock:
                apply(idx)
                idx.generation = gen
        elif idx is not None:
            matrix_mod.remember(self.path, None)

    def upsert(self, points: Sequence[tuple[str, Sequence[float] | np.ndarray, dict[str, Any]]]) -> None:
        """Insert or replace points given as ``(id, vector, payload)``."""
        qe = self._qe
        if not points:
            return
        vecs = [_vec(v, self.dim) for _, v, _ in points]
        both = list(zip(points, vecs, strict=True))
        pts = [qe.Point(point_uuid(i), v, {**p, _ID_KEY: i}) for (i, _, p), v in both]
        rows = [(i, np.asarray(v, np.float32), p) for (i, _, p), v in both]
        try:
            self._write(qe.UpdateOperation.upsert_points(pts), lambda idx: idx.upsert(rows))
        except Exception as e:
            raise StoreError(f"upsert failed: {e}") from e

    def search(
        self, vector: Sequence[float] | np.ndarray, k: int, filters: Sequence[FieldMatch] = ()
    ) -> list[ScoredPoint]:
        """The ``k`` nearest points that match every filter, best first."""
        qe = self._qe
        if k <= 0:
            return []
        idx = self._matrix()
        if idx is not None and idx.can_filter(filters):
            with idx.lock:
                best = idx.search(
                    np.asarray(_vec(vector, self.dim), np.float32),
                    k,
                    filters,
                    approx=self._approx,
                    min_rows=self._approx_min_rows,
                )
            if best is not None:
                payloads = {p.id: p.payload for p in self.get([i for i, _ in best])}
                return [ScoredPoint(i, score, payloads[i]) for i, score in best if i in payloads]
        req = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(_vec(vector, self.dim)),
            filter=self._filter(filters),
            params=self._params,
            with_payload=True,
            with_vector=False,
        )
        out = []
        for p in self._shard.query(req):
            pid, payload = _unwrap(p.payload, p.id)
            out.append(ScoredPoint(pid, float(p.score), payload))
        return out

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """The points with these ids, in the order asked; unknown ids are skipped."""
        if not ids:
            return []
        recs = self._shard.retrieve([point_uuid(i) for i in ids], True, with_vectors)
        by_id = {}
        for r in recs:
            pid, payload = _unwrap(r.payload, r.id)
            by_id[pid] = StoredPoint(pid, payload, list(r.vector) if with_vectors and r.vector else None)
        return [by_id[i] for i in ids if i in by_id]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove these points (unknown ids are ignored)."""
        if ids:
            op = self._qe.UpdateOperation.delete_points([point_uuid(i) for i in ids])
            self._write(op, lambda idx: idx.delete(ids))

    def count(self, filters: Sequence[FieldMatch] = ()) -> int:
        """How many points match every filter."""
        return int(self._shard.count(self._qe.CountRequest(exact=True, filter=self._filter(filters))))

    def scroll(
        self, filters: Sequence[FieldMatch] = (), *, batch: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every matching point, in pages of ``batch``."""
        offset = None
        while True:
            req = self._qe.ScrollRequest(
                offset=offset,
                limit=batch,
                filter=self._filter(filters),
                with_payload=True,
                with_vector=with_vectors,
            )
            recs, offset = self._shard.scroll(req)
            for r in recs:
                pid, payload = _unwrap(r.payload, r.id)
                yield StoredPoint(pid, payload, list(r.vector) if with_vectors and r.vector else None)
            if offset is None:
                return

    def optimize(self) -> bool:
        """Run Qdrant's optimizers now (merges segments, builds the HNSW index); blocks until done.

        Until then searches scan plain segments exactly, which is fast at KB sizes (see bench_kb.py).
        """
        return bool(self._shard.optimize())

    def close(self) -> None:
        """Flush and release the folder lock."""
        shard = getattr(self, "_shard", None)
        if shard is not None:
            shard.flush()
            shard.close()
            self._shard = None


# How long an operation waits for another process (an embedded run, `fazai kb`) to release the store.
LOCK_WAIT_S = 10.0


def open_edge_store(
    path: Path, dim: int, *, indexed: Sequence[str] = (), wait_s: float = LOCK_WAIT_S
) -> EdgeStore:
    """Open the embedded store, retrying while another process holds its lock (up to ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return EdgeStore(path, dim, indexed=indexed)
        except StoreLockedError as e:
            if time.monotonic() + delay > deadline:
                raise StoreLockedError(
                    f"the knowledge base at {path} stayed locked by another process for {wait_s:.1f}s; "
                    "fazaid and `fazai agent` hold it only while they read or write, so something else "
                    f"keeps it open (see `lsof +D {path}`), or point [kb] path elsewhere"
                ) from e
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


# --------------------------------------------------------------------------- server (qdrant-client)


class QdrantServerStore:
    """A collection on a Qdrant server or cluster, through ``qdrant-client``.

    Pass a ready ``QdrantClient`` (tests use its local mode, ``QdrantClient(path=…)``, which speaks the
    same API) or build one with :meth:`from_url`.
    """

    def __init__(self, client: Any, collection: str, dim: int, *, indexed: Sequence[str] = ()) -> None:
        from qdrant_client import models

        self._m = models
        self._c = client
        self.collection = collection
        self.dim = dim
        try:
            exists = client.collection_exists(collection)
            if not exists:
                client.create_collection(
                    collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
                )
            else:
                info = client.get_collection(collection)
                size = getattr(info.config.params.vectors, "size", None)
                if size is not None and size != dim:
                    raise StoreError(f"collection {collection!r} holds {size}-dim vectors, not {dim}")
            for name in indexed:
                # Local mode has no payload indexes (it warns); servers ignore duplicates.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    client.create_payload_index(collection, name, models.PayloadSchemaType.KEYWORD)
        except StoreError:
            raise
        except Exception as e:
            raise StoreError(f"cannot reach the Qdrant collection {collection!r}: {e}") from e

    @classmethod
    def from_url(
        cls, url: str, collection: str, dim: int, *, api_key: str | None = None, indexed: Sequence[str] = ()
    ) -> QdrantServerStore:
        """Connect to a Qdrant server by URL (``http://host:6333``)."""
        from qdrant_client import QdrantClient

        return cls(QdrantClient(url=url, api_key=api_key, timeout=10), collection, dim, indexed=indexed)

    def _filter(self, filters: Sequence[FieldMatch]) -> Any:
        m = self._m
        if not filters:
            return None
        return m.Filter(
            must=[m.FieldCondition(key=f.key, match=m.MatchAny(any=list(f.values))) for f in filters]
        )

    def upsert(self, points: Sequence[tuple[str, Sequence[float] | np.ndarray, dict[str, Any]]]) -> None:
        """Insert or replace points given as ``(id, vector, payload)``."""
        if not points:
            return
        pts = [
            self._m.PointStruct(id=point_uuid(i), vector=_vec(v, self.dim), payload={**p, _ID_KEY: i})
            for i, v, p in points
        ]
        try:
            self._c.upsert(self.collection, points=pts, wait=True)
        except Exception as e:
            raise StoreError(f"upsert failed: {e}") from e

    def search(
        self, vector: Sequence[float] | np.ndarray, k: int, filters: Sequence[FieldMatch] = ()
    ) -> list[ScoredPoint]:
        """The ``k`` nearest points that match every filter, best first."""
        if k <= 0:
            return []
        res = self._c.query_points(
            self.collection,
            query=_vec(vector, self.dim),
            limit=k,
            query_filter=self._filter(filters),
            with_payload=True,
        )
        out = []
        for p in res.points:
            pid, payload = _unwrap(p.payload, p.id)
            out.append(ScoredPoint(pid, float(p.score), payload))
        return out

    def get(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[StoredPoint]:
        """The points with these ids, in the order asked; unknown ids are skipped."""
        if not ids:
            return []
        recs = self._c.retrieve(
            self.collection, ids=[point_uuid(i) for i in ids], with_payload=True, with_vectors=with_vectors
        )
        by_id = {}
        for r in recs:
            pid, payload = _unwrap(r.payload, r.id)
            by_id[pid] = StoredPoint(pid, payload, list(r.vector) if with_vectors and r.vector else None)
        return [by_id[i] for i in ids if i in by_id]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove these points (unknown ids are ignored)."""
        if ids:
            self._c.delete(
                self.collection, points_selector=self._m.PointIdsList(points=[point_uuid(i) for i in ids])
            )

    def count(self, filters: Sequence[FieldMatch] = ()) -> int:
        """How many points match every filter."""
        return int(self._c.count(self.collection, count_filter=self._filter(filters), exact=True).count)

    def scroll(
        self, filters: Sequence[FieldMatch] = (), *, batch: int = 256, with_vectors: bool = False
    ) -> Iterator[StoredPoint]:
        """Every matching point, in pages of ``batch``."""
        offset = None
        while True:
            recs, offset = self._c.scroll(
                self.collection,
                scroll_filter=self._filter(filters),
                limit=batch,
                offset=offset,
                with_payload=True,
                with_vectors=with_vectors,
            )
            for r in recs:
                pid, payload = _unwrap(r.payload, r.id)
                yield StoredPoint(pid, payload, list(r.vector) if with_vectors and r.vector else None)
            if offset is None:
                return

    def close(self) -> None:
        """Close the client."""
        # Closing twice or a dropped connection: nothing left to release.
        with contextlib.suppress(Exception):
            self._c.close()
