"""Typed errors for OPNsense replies. Each message says what happened and what to do."""

from __future__ import annotations

from typing import Any


class OPNsenseError(Exception):
    """Base class of every connector error."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransportError(OPNsenseError):
    """The firewall could not be reached (DNS, refused connection, TLS, timeout)."""


class AuthenticationFailed(OPNsenseError):
    """HTTP 401: wrong or missing key/secret, or the user is disabled or expired."""


class PermissionDenied(OPNsenseError):
    """HTTP 403, or a save refused for a read-only user / a component needing ``page-all``."""


class EndpointNotFound(OPNsenseError):
    """HTTP 404 ``Endpoint not found``: the endpoint does not exist on this OPNsense version."""


class ValidationFailed(OPNsenseError):
    """``{"result":"failed","validations":{...}}``: the firewall rejected field values."""

    def __init__(self, message: str, fields: dict[str, list[str]], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.fields = fields


class InUse(OPNsenseError):
    """The item is referenced elsewhere (e.g. an alias used by a rule) and cannot be deleted."""


class NotSupported(OPNsenseError):
    """The operation needs a feature this firewall's version does not have."""


class OperationFailed(OPNsenseError):
    """The firewall answered, but reported a failure (``result``/``status`` not ok)."""


class ServerError(OPNsenseError):
    """HTTP 5xx with OPNsense's ``errorMessage`` shape or an unexpected reply."""


def validation_error(endpoint: str, validations: dict[str, Any]) -> ValidationFailed:
    """Build a :class:`ValidationFailed` listing every field and message."""
    fields: dict[str, list[str]] = {}
    for key, msg in validations.items():
        fields[key] = [str(m) for m in msg] if isinstance(msg, list) else [str(msg)]
    lines = [f"  {k}: {m}" for k, msgs in fields.items() for m in msgs]
    text = f"{endpoint}: the firewall rejected the values:\n" + "\n".join(lines)
    text += "\nFix these fields and try again (values are strings; lists are comma-separated)."
    return ValidationFailed(text, fields, status=200, body={"validations": validations})
