"""The bus between fazaid replicas: NATS JetStream (docs/scale.md).

Events are stored first (PostgreSQL), then published on ``<prefix>.<session id>``; a replica that
serves an SSE client for a session another replica runs follows that subject with a JetStream
consumer (explicit acks) and fills any hole from the store, so the client sees every event once, in
order.
"""

from fazai.bus.nats_bus import BusEnd, BusIdle, BusUnavailable, EventBus

__all__ = ["BusEnd", "BusIdle", "BusUnavailable", "EventBus"]
