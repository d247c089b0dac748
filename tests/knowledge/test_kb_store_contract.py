"""The same contract for every VectorStore: embedded qdrant-edge and qdrant-client (local mode).

``edge-approx`` is the embedded store answering through its approximate first stage from the first
row on (``fazai.knowledge.approx``: codes scanned, then only ``k`` candidates re-ranked), fitted in
the search that asks for it. Codes of 8-dim vectors keep all 8 axes, so its answers must be exact.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fazai.knowledge.store import (
    EdgeStore,
    FieldMatch,
    QdrantServerStore,
    StoreError,
    StoreLockedError,
    VectorStore,
)

DIM = 8


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _open(kind: str, path: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(path / "edge", DIM, indexed=["tags", "status"])
    if kind == "edge-approx":
        return EdgeStore(path / "edge", DIM, indexed=["tags", "status"], approx_min_rows=1)
    from qdrant_client import QdrantClient

    return QdrantServerStore(QdrantClient(path=str(path / "qc")), "kb", DIM, indexed=["tags", "status"])


@pytest.fixture
def approx_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The codes are fitted inside the search that asks, and only k candidates are re-ranked."""
    from fazai.knowledge import approx, matrix

    monkeypatch.setattr(matrix, "BUILD_IN_THREAD", False)
    monkeypatch.setattr(approx, "CANDIDATES", 1)
    monkeypatch.setattr(approx, "RERANK_PER_K", 1)


KINDS = ["edge", "edge-approx", "qdrant-client"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param == "edge-approx":
        request.getfixturevalue("approx_inline")
    s = _open(request.param, tmp_path)
    yield s
    s.close()


def _fill(store: VectorStore, n: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    vecs = {f"item-{i}": _unit(rng) for i in range(n)}
    store.upsert(
        [
            (pid, v, {"tags": ["even" if i % 2 == 0 else "odd", f"mod3-{i % 3}"], "status": "s", "n": i})
            for i, (pid, v) in enumerate(vecs.items())
        ]
    )
    return vecs


def test_is_a_vector_store(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.count() == 0


def test_upsert_get_count(store: VectorStore) -> None:
    vecs = _fill(store)
    assert store.count() == 20
    got = store.get(["item-3", "nope", "item-1"], with_vectors=True)
    assert [p.id for p in got] == ["item-3", "item-1"]
    assert got[0].payload["n"] == 3 and "_id" not in got[0].payload
    np.testing.assert_allclose(got[0].vector, vecs["item-3"], atol=1e-6)
    assert store.get(["item-3"])[0].vector is None


def test_upsert_replaces(store: VectorStore) -> None:
    _fill(store)
    store.upsert([("item-0", np.eye(DIM, dtype=np.float32)[0], {"tags": ["new"], "status": "s"})])
    assert store.count() == 20
    assert store.get(["item-0"])[0].payload == {"tags": ["new"], "status": "s"}


def test_search_nearest_first(store: VectorStore) -> None:
    vecs = _fill(store)
    hits = store.search(vecs["item-5"], k=3)
    assert hits[0].id == "item-5"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 3
    assert hits[0].score >= hits[1].score >= hits[2].score
    # Cosine scores agree with a brute-force computation.
    expect = sorted(vecs, key=lambda k: -float(vecs[k] @ vecs["item-5"]))[:3]
    assert [h.id for h in hits] == expect


def test_search_with_filters(store: VectorStore) -> None:
    vecs = _fill(store)
    hits = store.search(vecs["item-5"], k=20, filters=[FieldMatch.of("tags", "even")])
    assert hits and all(int(h.id.split("-")[1]) % 2 == 0 for h in hits)
    assert len(hits) == 10
    both = store.search(
        vecs["item-5"], k=20, filters=[FieldMatch.of("tags", "even"), FieldMatch.of("tags", "mod3-0")]
    )
    assert sorted(int(h.id.split("-")[1]) for h in both) == [0, 6, 12, 18]
    anyof = store.count([FieldMatch.of("tags", "mod3-1", "mod3-2")])
    assert anyof == 13
    assert store.search(vecs["item-5"], k=5, filters=[FieldMatch.of("tags", "missing")]) == []


def test_delete(store: VectorStore) -> None:
    _fill(store)
    store.delete(["item-1", "item-2", "never-existed"])
    assert store.count() == 18
    assert store.get(["item-1"]) == []


def test_scroll_pages_through_everything(store: VectorStore) -> None:
    _fill(store, 45)
    ids = [p.id for p in store.scroll(batch=7)]
    assert sorted(ids) == sorted(f"item-{i}" for i in range(45))
    odd = [p.id for p in store.scroll([FieldMatch.of("tags", "odd")], batch=4, with_vectors=True)]
    assert len(odd) == 22


def test_wrong_dimension_is_a_clear_error(store: VectorStore) -> None:
    with pytest.raises(StoreError, match="dimensions"):
        store.upsert([("x", [1.0, 2.0], {})])


@pytest.mark.parametrize("kind", KINDS)
def test_persists_across_reopen(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "edge-approx":
        request.getfixturevalue("approx_inline")
    s = _open(kind, tmp_path)
    vecs = _fill(s)
    s.close()
    s = _open(kind, tmp_path)
    try:
        assert s.count() == 20
        assert s.search(vecs["item-9"], k=1)[0].id == "item-9"
    finally:
        s.close()


def test_edge_store_is_exclusive(tmp_path: Path) -> None:
    a = EdgeStore(tmp_path / "kb", DIM)
    try:
        a.upsert([("x", np.ones(DIM), {})])
        with pytest.raises(StoreLockedError, match="another process"):
            EdgeStore(tmp_path / "kb", DIM)
    finally:
        a.close()


def test_edge_store_rejects_other_dimension(tmp_path: Path) -> None:
    a = EdgeStore(tmp_path / "kb", DIM)
    a.upsert([("x", np.ones(DIM), {})])
    a.close()
    with pytest.raises(StoreError, match="8-dim"):
        EdgeStore(tmp_path / "kb", 4)


# --------------------------------------------------------------------------- the edge store's matrix


def test_edge_matrix_agrees_with_qdrant_after_writes(tmp_path: Path) -> None:
    """The in-memory matrix follows upserts, replacements and deletes: same answers as Qdrant's scan."""
    s = EdgeStore(tmp_path / "kb", DIM, indexed=["tags", "status"])
    try:
        vecs = _fill(s, 60)
        rng = np.random.default_rng(3)
        q = _unit(rng)
        s.search(q, 5)  # builds the matrix
        s.delete(["item-1", "item-2"])
        s.upsert(
            [("item-3", -vecs["item-3"], {"tags": ["even"], "status": "s"}), ("new", q, {"tags": ["odd"]})]
        )
        s.close()
        plain = EdgeStore(tmp_path / "kb", DIM, indexed=["tags", "status"], matrix=False)
        try:
            for flt in ([], [FieldMatch.of("tags", "even")], [FieldMatch.of("tags", "odd", "mod3-0")]):
                want = [(h.id, round(h.score, 5), h.payload) for h in plain.search(q, 10, flt)]
                plain.close()
                s = EdgeStore(tmp_path / "kb", DIM, indexed=["tags", "status"])
                got = [(h.id, round(h.score, 5), h.payload) for h in s.search(q, 10, flt)]
                s.close()
                assert got == want
                plain = EdgeStore(tmp_path / "kb", DIM, indexed=["tags", "status"], matrix=False)
            assert "item-1" not in {h.id for h in plain.search(vecs["item-1"], 60)}
        finally:
            plain.close()
    finally:
        s.close()


def test_edge_matrix_sees_writes_made_without_it(tmp_path: Path) -> None:
    """A write through another store object (another process: `fazai kb` from a shell) changes the
    generation; the cached matrix is then not trusted, and the new item is found."""
    a = EdgeStore(tmp_path / "kb", DIM)
    _fill(a, 10)
    a.search(np.eye(DIM, dtype=np.float32)[0], 3)  # matrix cached for this folder
    a.close()
    # Another process writes (the store's lock is free again once `a` is closed).
    code = (
        "import sys, numpy as np; from pathlib import Path; from fazai.knowledge.store import EdgeStore; "
        f"s = EdgeStore(Path(sys.argv[1]), {DIM}); "
        f"s.upsert([('fresh', np.eye({DIM}, dtype=np.float32)[7], {{'tags': ['t']}})]); s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "kb")], check=True, timeout=60)
    target = np.eye(DIM, dtype=np.float32)[7]
    c = EdgeStore(tmp_path / "kb", DIM)
    try:
        hits = c.search(target, 1)
        assert hits[0].id == "fresh" and hits[0].payload == {"tags": ["t"]}
        # A filter on a field the matrix does not index is answered by Qdrant.
        assert [h.id for h in c.search(target, 3, [FieldMatch.of("tags", "t")])] == ["fresh"]
    finally:
        c.close()
