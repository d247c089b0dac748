"""Daemon access: loopback binds by default, and a bearer token (see ``fazai.sessions.token``)."""

from __future__ import annotations

import hmac
import ipaddress
import socket


class AuthConfigError(Exception):
    """The daemon must not start with this access configuration."""


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost``."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(host: str, require_token: bool) -> None:
    """Refuse a non-loopback bind without token authentication."""
    if not require_token and not is_loopback(host):
        raise AuthConfigError(
            f"refusing to listen on {host} without a token: set [daemon] require_token = true "
            "or bind to 127.0.0.1"
        )


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer …`` header."""
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
