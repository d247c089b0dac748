"""A faithful OPNsense REST API simulator (test double; never shipped).

Behaviour follows ``shared/reference/opnsense-api.md`` (read from OPNsense's source): routing and
404s before auth, 401/403 shapes, the CRUD contract, string-typed values, staged vs applied state,
savepoint/apply/cancelRollback with a rollback timer on an injectable clock, alias_util pf tables,
IDS alerts, and version differences (25.1, 25.7, 26.1, 26.7).
"""

from .app import ApiKey, Clock, Simulator
from .server import serve

__all__ = ["ApiKey", "Clock", "Simulator", "serve"]
