"""Passwords (argon2id), token secrets and the key that signs access tokens."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password
# (no user enumeration by timing).
_DUMMY_HASH = _HASHER.hash("fazai-no-such-user")

MIN_PASSWORD = 8


class KeyFileError(Exception):
    """A key file is unsafe or unreadable; the message says what to do."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (refuses passwords shorter than 8 characters)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; ``None`` (no such user) still costs one verify."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the stored hash uses weaker parameters than today's defaults."""
    return _HASHER.check_needs_rehash(stored)


def new_token(prefix: str) -> tuple[str, str, str]:
    """A fresh ``prefix_<id>_<secret>`` token: (token, id, sha256 of the secret)."""
    tid = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{prefix}_{tid}_{secret}", tid, digest(secret)


def split_token(token: str, prefix: str) -> tuple[str, str] | None:
    """(id, secret) of a ``prefix_<id>_<secret>`` token, or None when it is not one."""
    if not token.startswith(prefix + "_"):
        return None
    parts = token[len(prefix) + 1 :].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != 16 or not parts[1]:
        return None
    return parts[0], parts[1]


def digest(secret: str) -> str:
    """SHA-256 hex of a token secret (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def ensure_key_file(path: Path, nbytes: int = 32) -> bytes:
    """Read a root-only key file, creating it (0600) with ``nbytes`` random bytes when missing.

    A file readable by group or others is refused, not silently used: the key may have leaked.
    """
    path = Path(path)
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyFileError(
                f"{path} is readable by others (mode {mode:o}): a key there may have leaked; "
                f"replace it, or if you are sure, `chmod 600 {path}`"
            )
        data = path.read_bytes()
        if len(data) < nbytes:
            raise KeyFileError(
                f"{path} is too short ({len(data)} bytes, need {nbytes}): remove it to regenerate"
            )
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return data
