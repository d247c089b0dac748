"""Secrets encrypted at rest with AES-256-GCM under the master key.

Each secret has its own random 96-bit nonce and its name as associated data (a ciphertext moved to
another name does not decrypt). One check value, encrypted under the master key, tells a wrong key
apart before anything is decrypted or written. Rotating the master key re-encrypts every secret in
one transaction.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.protocol import utcnow_iso
from fazai.vault import keys
from fazai.vault.keys import MasterKey, VaultError
from fazai.vault.schema import meta, secrets

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_CHECK = b"fazai-vault-check-v1"
REF_PREFIX = "vault:"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    name: str
    version: int
    created_at: str
    updated_at: str


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise VaultError(f"bad secret name {name!r}: letters, digits, '_', '.', '-' (max 200)")
    return name


class Vault:
    """Encrypted secrets on the store's engine. Open with :meth:`open` (which checks the key)."""

    def __init__(self, engine: AsyncEngine, master: MasterKey):
        self.engine = engine
        self.master = master
        self._aes = AESGCM(master.key)

    @classmethod
    async def open(cls, engine: AsyncEngine, state_dir: Path, *, create: bool = False) -> Vault:
        """The vault under the configured master key; a wrong key is a :class:`VaultError`."""
        master = keys.load(state_dir, create=create)
        v = cls(engine, master)
        await v._check_key(create=create)
        return v

    async def _check_key(self, *, create: bool) -> None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(meta).where(meta.c.id == 1))).first()
            if row is None:
                if not create:
                    return  # an empty vault: nothing to check against yet
                nonce = os.urandom(12)
                ct = self._aes.encrypt(nonce, _CHECK, b"check")
                await conn.execute(
                    insert(meta).values(id=1, key_id=self.master.key_id, nonce=nonce, check_value=ct)
                )
                return
        if not _opens(self._aes, row.nonce, row.check_value, b"check"):
            raise VaultError(
                f"the master key ({self.master.source}, id {self.master.key_id}) does not open this vault "
                f"(made with key id {row.key_id}): nothing was decrypted or changed; use the right "
                f"${keys.ENV_KEY} or key file"
            )

    # -- secrets -------------------------------------------------------------------------------

    async def set(self, name: str, value: str) -> SecretInfo:
        """Store (or replace, with a new version) a secret."""
        check_name(name)
        if not value:
            raise VaultError("refusing an empty secret")
        await self._check_key(create=True)
        nonce = os.urandom(12)
        ct = self._aes.encrypt(nonce, value.encode(), name.encode())
        now = utcnow_iso()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(secrets.c.version, secrets.c.created_at).where(secrets.c.name == name)
                )
            ).first()
            if row is None:
                await conn.execute(
                    insert(secrets).values(
                        name=name,
                        nonce=nonce,
                        ciphertext=ct,
                        version=1,
                        key_id=self.master.key_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return SecretInfo(name, 1, now, now)
            await conn.execute(
                update(secrets)
                .where(secrets.c.name == name)
                .values(
                    nonce=nonce,
                    ciphertext=ct,
                    version=row.version + 1,
                    key_id=self.master.key_id,
                    updated_at=now,
                )
            )
            return SecretInfo(name, row.version + 1, row.created_at, now)

    async def get(self, name: str) -> str:
        """The decrypted value (for the code that uses it; never print it)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(secrets).where(secrets.c.name == name))).first()
        if row is None:
            raise VaultError(f"no secret {name} in the vault (add it with `fazai secrets set {name}`)")
        try:
            return self._aes.decrypt(row.nonce, row.ciphertext, name.encode()).decode()
        except InvalidTag as e:
            raise VaultError(f"secret {name} does not decrypt (altered, or another master key)") from e

    async def list(self) -> list[SecretInfo]:
        """Names and versions, by name."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        secrets.c.name, secrets.c.version, secrets.c.created_at, secrets.c.updated_at
                    ).order_by(secrets.c.name)
                )
            ).all()
        return [SecretInfo(r.name, r.version, r.created_at, r.updated_at) for r in rows]

    async def exists(self, name: str) -> bool:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(secrets.c.name).where(secrets.c.name == name))
            ).first() is not None

    async def remove(self, name: str) -> bool:
        """Delete a secret; False when there was none."""
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(secrets).where(secrets.c.name == name))
        return bool(res.rowcount)

    # -- master key rotation ---------------------------------------------------------------------

    async def rotate_master(self, state_dir: Path) -> tuple[MasterKey, int]:
        """A new master key: every secret re-encrypted in one transaction, then the key file replaced.

        Crash-safe: the new key is written to ``vault.key.new`` first; :func:`recover_rotation` adopts
        it at the next open when the database already holds the new check value.
        """
        if self.master.source == "env":
            raise VaultError(
                f"the master key comes from ${keys.ENV_KEY}: rotate it where that variable is set, or "
                "move it to a key file first"
            )
        path = Path(self.master.source)
        new = MasterKey(os.urandom(keys.KEY_BYTES), str(path))
        staged = path.with_name(path.name + ".new")
        keys.write_key_file(staged, new.key)
        aes = AESGCM(new.key)
        n = 0
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(secrets))).all()
            for r in rows:
                try:
                    plain = self._aes.decrypt(r.nonce, r.ciphertext, r.name.encode())
                except InvalidTag as e:
                    raise VaultError(f"secret {r.name} does not decrypt: nothing was rotated") from e
                nonce = os.urandom(12)
                await conn.execute(
                    update(secrets)
                    .where(secrets.c.name == r.name)
                    .values(
                        nonce=nonce, ciphertext=aes.encrypt(nonce, plain, r.name.encode()), key_id=new.key_id
                    )
                )
                n += 1
            nonce = os.urandom(12)
            await conn.execute(delete(meta))
            await conn.execute(
                insert(meta).values(
                    id=1, key_id=new.key_id, nonce=nonce, check_value=aes.encrypt(nonce, _CHECK, b"check")
                )
            )
        os.replace(staged, path)
        self.master, self._aes = new, aes
        return new, n


def _opens(aes: AESGCM, nonce: bytes, ct: bytes, aad: bytes) -> bool:
    try:
        return aes.decrypt(nonce, ct, aad) == _CHECK
    except InvalidTag:
        return False


async def recover_rotation(engine: AsyncEngine, state_dir: Path) -> None:
    """Finish a master-key rotation that crashed between the commit and the file rename."""
    path = keys.key_file(state_dir)
    staged = path.with_name(path.name + ".new")
    if not staged.exists():
        return
    new = keys.MasterKey(keys._decode(staged.read_text(), str(staged)), str(staged))
    async with engine.connect() as conn:
        row = (await conn.execute(select(meta).where(meta.c.id == 1))).first()
    if row is not None and _opens(AESGCM(new.key), row.nonce, row.check_value, b"check"):
        os.replace(staged, path)  # the database was re-encrypted: the new key is the key
    else:
        staged.unlink()  # the rotation never committed: the old key stays


def is_ref(value: str | None) -> bool:
    """True for a ``vault:NAME`` reference."""
    return bool(value) and value.startswith(REF_PREFIX)  # type: ignore[union-attr]
