"""Real NATS (JetStream) and PostgreSQL for the scale-out tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services import Nats


@pytest.fixture
def nats_server() -> Iterator[Nats]:
    """A running ``nats-server -js`` with its own store dir (stop/start it to simulate an outage)."""
    try:
        n = Nats().start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield n
    finally:
        n.destroy()
