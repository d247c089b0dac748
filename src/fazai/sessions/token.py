"""The daemon's bearer token, kept in a root-only (0600) file that the daemon and its clients share."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
