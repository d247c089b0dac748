"""Daemon access: loopback binds by default, and a bearer token kept in a root-only (0600) file."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from pathlib import Path


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


def ensure_token(path: Path) -> str:
    """Read the token file, creating it (0600, in a 0700 folder when new) with a fresh token."""
    path = Path(path)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            # Tighten rather than refuse: the daemon created it; someone loosened it.
            os.chmod(path, 0o600)
        token = path.read_text().strip()
        if token:
            return token
    new_dir = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    if new_dir:
        os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def read_token(path: Path) -> str | None:
    """The token for clients, or ``None`` when the file is missing or unreadable by this user."""
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer …`` header."""
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
