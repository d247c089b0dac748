"""Shared fixtures. Real things only: models come from the packaged GGUFs that
`scripts/test-models.sh` (run by `make test`) stores in .cache/models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import Postgres

REPO = Path(__file__).resolve().parents[1]
TEST_MODELS_DIR = REPO / ".cache" / "models"


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The Gemma 3 270M GGUF (the fast test model)."""
    path = TEST_MODELS_DIR / "gemma3-270m.gguf"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test-models.sh (make test does it)")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (trust auth, fsync off), shared by the run: its URL."""
    try:
        pg = Postgres().start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield pg.url
    finally:
        pg.destroy()
