"""The matrix's approximate first stage (``fazai.knowledge.approx``): recall, writes, builds, restarts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from fazai.knowledge import approx, matrix
from fazai.knowledge.matrix import MatrixIndex
from fazai.knowledge.store import EdgeStore, FieldMatch

DIM = 96


def _topics(rng: np.random.Generator, n: int, topics: np.ndarray) -> np.ndarray:
    """Unit vectors around random topic directions (text embeddings have such structure)."""
    t = rng.integers(0, len(topics), n)
    v = topics[t] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    topics = rng.standard_normal((40, DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    return _topics(rng, 3000, topics), _topics(rng, 50, topics)


def _filled(vecs: np.ndarray, path: Path | None = None) -> MatrixIndex:
    idx = MatrixIndex(DIM, ("status",), "g", store_path=path)
    idx.upsert((f"id-{i}", v, {"status": "a" if i % 2 else "b"}) for i, v in enumerate(vecs))
    return idx


def _ids(hits: list[tuple[str, float]] | None) -> list[str]:
    assert hits is not None
    return [i for i, _ in hits]


@pytest.fixture
def small_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Codes shorter than the vectors and few candidates: the first stage really drops rows."""
    monkeypatch.setattr(approx, "CODE_DIM", 16)
    monkeypatch.setattr(approx, "CANDIDATES", 50)
    monkeypatch.setattr(approx, "RERANK_PER_K", 5)


def test_recall_against_exact_and_exact_scores(
    data: tuple[np.ndarray, np.ndarray], small_codes: None
) -> None:
    vecs, queries = data
    idx = _filled(vecs)
    idx.search(queries[0], 5, min_rows=1)
    assert idx.wait_approx(60) and idx.codes is not None
    found = 0
    for q in queries:
        want = _ids(idx.search(q, 5, approx=False))
        got = idx.search(q, 5, min_rows=1)
        assert got is not None
        found += len(set(want) & set(_ids(got)))
        for pid, score in got:  # re-ranked with the float32 vectors: the scores are exact cosines
            assert score == pytest.approx(float(vecs[int(pid.split("-")[1])] @ q), abs=1e-5)
    assert found / (5 * len(queries)) >= 0.9
    # Below min_rows the exact scan answers.
    assert _ids(idx.search(queries[1], 5)) == _ids(idx.search(queries[1], 5, approx=False))


def test_data_without_structure_stays_exact(small_codes: None) -> None:
    """Random vectors keep their variance in every direction: the codes' measured recall is poor,
    so they are not used and searches stay exact."""
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((3000, DIM)).astype(np.float32)
    idx = _filled(vecs)
    q = rng.standard_normal(DIM).astype(np.float32)
    idx.search(q, 5, min_rows=1)
    assert idx.wait_approx(60) is False
    assert idx.codes is not None and idx.codes.recall is not None and idx.codes.recall < approx.MIN_RECALL
    assert idx.search(q, 10, min_rows=1) == idx.search(q, 10, approx=False)


def test_codes_follow_upserts_replacements_and_deletes(
    data: tuple[np.ndarray, np.ndarray], small_codes: None
) -> None:
    vecs, queries = data
    idx = _filled(vecs)
    idx.search(queries[0], 5, min_rows=1)
    assert idx.wait_approx(60)
    q = queries[3]
    idx.upsert([("fresh", q, {"status": "a"})])
    assert _ids(idx.search(q, 3, min_rows=1))[0] == "fresh"
    # A replaced vector is found by its new value, not its old one.
    idx.upsert([("id-7", -vecs[7], {"status": "a"})])
    assert "id-7" in _ids(idx.search(-vecs[7], 3, min_rows=1))
    assert "id-7" not in _ids(idx.search(vecs[7], 10, min_rows=1))
    # Deleted rows never come back, and their reused row numbers hold the new items only.
    gone = [f"id-{i}" for i in range(0, 3000, 3)]
    idx.delete(["fresh", *gone])
    for qq in queries[:10]:
        hits = _ids(idx.search(qq, 10, min_rows=1))
        assert len(hits) == 10 and not set(hits) & {"fresh", *gone}
    idx.upsert([("again", q, {"status": "b"})])
    assert _ids(idx.search(q, 1, min_rows=1)) == ["again"]
    assert _ids(idx.search(q, 1, [FieldMatch.of("status", "a")], min_rows=1)) != ["again"]


def test_writes_during_a_build_are_not_lost(
    data: tuple[np.ndarray, np.ndarray], small_codes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build reads a snapshot without the lock; rows written meanwhile are coded at its end,
    and searches meanwhile are answered (by the exact scan), not stalled."""
    vecs, queries = data
    gate, started = threading.Event(), threading.Event()
    real_train = approx.train

    def slow_train(sample: np.ndarray, code_dim: int = approx.CODE_DIM) -> tuple[np.ndarray, np.ndarray]:
        started.set()
        assert gate.wait(30)
        return real_train(sample, code_dim)

    monkeypatch.setattr(approx, "train", slow_train)
    idx = _filled(vecs)
    with idx.lock:
        assert _ids(idx.search(queries[0], 5, min_rows=1)) == _ids(idx.search(queries[0], 5, approx=False))
    assert started.wait(30) and idx.codes is None
    q = queries[4]
    with idx.lock:  # as EdgeStore does: writes and searches hold the index's lock
        idx.upsert([("during", q, {"status": "a"}), ("id-111", -vecs[111], {"status": "a"})])
        idx.delete([f"id-{i}" for i in range(100)])
        assert _ids(idx.search(q, 1, min_rows=1)) == ["during"]  # exact meanwhile
    gate.set()
    assert idx.wait_approx(60) and idx.codes is not None
    assert _ids(idx.search(q, 1, min_rows=1)) == ["during"]
    assert "id-111" in _ids(idx.search(-vecs[111], 3, min_rows=1))
    for qq in queries[:10]:
        assert not {f"id-{i}" for i in range(100)} & set(_ids(idx.search(qq, 10, min_rows=1)))


def test_axes_are_kept_and_reused_by_a_new_process(
    data: tuple[np.ndarray, np.ndarray], small_codes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vecs, queries = data
    store = tmp_path / "kb"
    idx = _filled(vecs, store)
    idx.search(queries[0], 5, min_rows=1)
    assert idx.wait_approx(60)
    kept = approx.axes_path(store)
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600
    # A new index (another process) codes its rows with the kept axes: no training.
    monkeypatch.setattr(approx, "train", lambda *a, **k: pytest.fail("trained again"))
    again = _filled(vecs, store)
    again.search(queries[0], 5, min_rows=1)
    assert again.wait_approx(60) and again.codes is not None
    np.testing.assert_array_equal(again.codes.axes, idx.codes.axes)  # type: ignore[union-attr]
    # A damaged file is ignored (trained again), never trusted.
    kept.write_bytes(b"not numpy")
    assert approx.load_axes(store, DIM) is None
    np.save(kept, np.full((DIM, 3), np.nan, np.float32))
    assert approx.load_axes(store, DIM) is None
    assert approx.load_axes(store, DIM + 1) is None


def test_a_failed_build_leaves_the_exact_scan(
    data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    vecs, queries = data

    def broken(*_: object, **__: object) -> None:
        raise MemoryError("no room for the sample")

    monkeypatch.setattr(approx, "train", broken)
    idx = _filled(vecs)
    idx.search(queries[0], 5, min_rows=1)
    assert idx.wait_approx(60) is False
    assert _ids(idx.search(queries[0], 5, min_rows=1)) == _ids(idx.search(queries[0], 5, approx=False))


def test_edge_store_codes_see_writes_of_another_process(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's write changes the generation: this process rebuilds its matrix and codes
    (from the kept axes) and finds the new item through the first stage."""
    monkeypatch.setattr(matrix, "BUILD_IN_THREAD", False)
    monkeypatch.setattr(approx, "CANDIDATES", 20)
    vecs, queries = data
    a = EdgeStore(tmp_path / "kb", DIM, approx_min_rows=1)
    a.upsert([(f"id-{i}", v, {}) for i, v in enumerate(vecs[:1000])])
    assert a.search(vecs[5], 1)[0].id == "id-5"
    assert matrix.cached(tmp_path / "kb").codes is not None  # type: ignore[union-attr]
    a.close()
    target = queries[9]
    code = (
        "import sys, numpy as np; from pathlib import Path; from fazai.knowledge.store import EdgeStore; "
        f"s = EdgeStore(Path(sys.argv[1]), {DIM}); "
        "v = np.array([float(x) for x in sys.argv[2].split(',')], np.float32); "
        "s.upsert([('other', v, {})]); s.close()"
    )
    arg = ",".join(repr(float(x)) for x in target)
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "kb"), arg], check=True, timeout=60)
    monkeypatch.setattr(approx, "train", lambda *a, **k: pytest.fail("trained again"))
    c = EdgeStore(tmp_path / "kb", DIM, approx_min_rows=1)
    try:
        hits = c.search(target, 3)
        assert hits[0].id == "other"
        idx = matrix.cached(tmp_path / "kb")
        assert idx is not None and idx.codes is not None and len(idx) == 1001
    finally:
        c.close()
