"""The vault's master key: ``$FAZAI_VAULT_KEY`` (base64, 32 bytes) or a root-only file.

The file (``<state_dir>/vault.key`` unless ``$FAZAI_VAULT_KEY_FILE``) must be mode 0600 and owned by
the user running FazAI: a wider mode is refused rather than fixed, because the key may have leaked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
ENV_KEY = "FAZAI_VAULT_KEY"
ENV_FILE = "FAZAI_VAULT_KEY_FILE"


class VaultError(Exception):
    """The vault refused an operation; the message says why and what to do (never a secret)."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    key: bytes
    source: str  # "env" or the file's path

    @property
    def key_id(self) -> str:
        """A short public fingerprint of the key (to tell keys apart in messages)."""
        return hashlib.sha256(b"fazai-vault-key-id:" + self.key).hexdigest()[:16]


def key_file(state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_FILE) or Path(state_dir) / "vault.key")


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as e:
        raise VaultError(f"the master key in {where} is not base64") from e
    if len(key) != KEY_BYTES:
        raise VaultError(f"the master key in {where} has {len(key)} bytes; it must have {KEY_BYTES}")
    return key


def encode(key: bytes) -> str:
    """The base64 text form of a key (what the file and the variable hold)."""
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def check_file_mode(path: Path) -> None:
    """Refuse a key file others can read, or one another user owns."""
    st = path.stat()
    if st.st_mode & 0o077:
        raise VaultError(
            f"refusing the vault key {path}: its mode is {st.st_mode & 0o777:o}, readable by others "
            f"(it may have leaked; rotate it with `fazai secrets rotate-key` after `chmod 600 {path}`)"
        )
    if st.st_uid != os.geteuid():
        raise VaultError(f"refusing the vault key {path}: it belongs to uid {st.st_uid}, not to this user")


def load(state_dir: Path, *, create: bool = False, environ: Mapping[str, str] | None = None) -> MasterKey:
    """The master key from the environment or the file (made, 0600, when ``create`` and absent)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY):
        return MasterKey(_decode(env[ENV_KEY], f"${ENV_KEY}"), "env")
    path = key_file(state_dir, env)
    if not path.exists():
        if not create:
            raise VaultError(
                f"no vault master key: set ${ENV_KEY} or create {path} (`fazai secrets set` makes one)"
            )
        write_key_file(path, os.urandom(KEY_BYTES))
    check_file_mode(path)
    return MasterKey(_decode(path.read_text(), str(path)), str(path))


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file atomically with mode 0600 (never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(encode(key) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
