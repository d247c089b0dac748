"""Where the connector keeps its state: the firewall registry, the 0600 secrets file,
temporary blocks and config backups, all under ``<state_dir>/opnsense/``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fazai.opnsense.client import ClientOptions, OPNsenseClient

if TYPE_CHECKING:
    from fazai.opnsense.firewall import Firewall

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class StoreError(Exception):
    """Bad registry input or a damaged state file; the message says what to do."""


@dataclass
class FirewallEntry:
    """A registered firewall (no secrets here)."""

    name: str
    url: str
    verify_tls: bool = True
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    def options(self) -> ClientOptions:
        """Client options from this entry."""
        return ClientOptions(
            verify_tls=self.verify_tls,
            ca_file=Path(self.ca_file) if self.ca_file else None,
            client_cert=Path(self.client_cert) if self.client_cert else None,
            client_key=Path(self.client_key) if self.client_key else None,
            timeout_s=self.timeout_s,
        )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte (atomic rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise StoreError(f"{path} is not valid JSON ({e}); fix or remove it.") from e


class FirewallStore:
    """Registry of firewalls + their secrets (``secrets.json``, mode 0600, never logged)."""

    def __init__(self, state_dir: Path, secrets: Callable[[str], str] | None = None) -> None:
        # ``secrets`` resolves ``vault:NAME`` references stored instead of a key or secret.
        self._resolve = secrets
        self.root = Path(state_dir) / "opnsense"
        self.registry = self.root / "firewalls.json"
        self.secrets = self.root / "secrets.json"

    def firewall_dir(self, name: str) -> Path:
        """Per-firewall state (blocks, backups)."""
        return self.root / name

    def list(self) -> list[FirewallEntry]:
        """Every registered firewall, sorted by name."""
        data = _read_json(self.registry, {})
        return [FirewallEntry(**v) for _, v in sorted(data.items())]

    def get(self, name: str) -> FirewallEntry:
        """The entry called ``name``; StoreError naming the known ones otherwise."""
        data = _read_json(self.registry, {})
        if name not in data:
            known = ", ".join(sorted(data)) or "none yet"
            raise StoreError(
                f"no firewall named {name!r} (known: {known}); add it with `fazai opnsense add`."
            )
        return FirewallEntry(**data[name])

    def add(self, entry: FirewallEntry, key: str, secret: str) -> None:
        """Register (or replace) a firewall and store its key/secret in the 0600 secrets file."""
        if not _NAME.match(entry.name):
            raise StoreError(f"bad firewall name {entry.name!r}: use letters, digits, '.', '_' or '-'.")
        if not entry.url.startswith(("https://", "http://")):
            raise StoreError(f"bad URL {entry.url!r}: give it as https://host[:port].")
        if not key or not secret:
            raise StoreError("both the API key and the API secret are needed.")
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        data = _read_json(self.registry, {})
        data[entry.name] = asdict(entry)
        _write_private(self.registry, json.dumps(data, indent=2) + "\n")
        secrets = _read_json(self.secrets, {})
        secrets[entry.name] = {"key": key, "secret": secret}
        _write_private(self.secrets, json.dumps(secrets, indent=2) + "\n")

    def remove(self, name: str) -> None:
        """Forget a firewall and its secret (its blocks and backups stay on disk)."""
        self.get(name)
        data = _read_json(self.registry, {})
        data.pop(name, None)
        _write_private(self.registry, json.dumps(data, indent=2) + "\n")
        secrets = _read_json(self.secrets, {})
        secrets.pop(name, None)
        _write_private(self.secrets, json.dumps(secrets, indent=2) + "\n")

    def credentials(self, name: str) -> tuple[str, str]:
        """The key/secret of ``name``."""
        if self.secrets.exists() and self.secrets.stat().st_mode & 0o077:
            raise StoreError(f"{self.secrets} is readable by others; run `chmod 600 {self.secrets}`.")
        secrets = _read_json(self.secrets, {})
        if name not in secrets:
            raise StoreError(f"no API secret stored for {name!r}; run `fazai opnsense add {name} URL` again.")
        key, secret = secrets[name]["key"], secrets[name]["secret"]
        return self._deref(name, key), self._deref(name, secret)

    def _deref(self, name: str, value: str) -> str:
        if not value.startswith("vault:"):
            return value
        if self._resolve is None:
            raise StoreError(f"{name}'s API key/secret is a vault reference, but no vault is available here")
        try:
            return self._resolve(value)
        except Exception as e:  # the vault's message names the reference, never a value
            raise StoreError(f"{name}: {value}: {e}") from e

    def client(self, name: str) -> OPNsenseClient:
        """A client for the registered firewall ``name``."""
        entry = self.get(name)
        key, secret = self.credentials(name)
        return OPNsenseClient(entry.url, key, secret, entry.options())


def resolve_name(store: FirewallStore, name: str | None) -> str:
    """``name`` or, when omitted, the only registered firewall."""
    if name:
        return name
    entries = store.list()
    if len(entries) == 1:
        return entries[0].name
    if not entries:
        raise StoreError("no firewall registered yet; run `fazai opnsense add NAME https://firewall`.")
    raise StoreError(
        f"several firewalls are registered ({', '.join(e.name for e in entries)}); pick one with --firewall."
    )


async def open_firewall(
    store: FirewallStore, name: str | None = None, *, never_block: list[str] | tuple[str, ...] = ()
) -> Firewall:
    """A connected :class:`Firewall` for a registered name (version detected); ``never_block``
    is ``[opnsense] never_block``."""
    from fazai.opnsense.firewall import Firewall

    real = resolve_name(store, name)
    fw = Firewall(store.client(real), store.firewall_dir(real), never_block=never_block)
    try:
        await fw.connect()
    except BaseException:
        await fw.client.aclose()
        raise
    return fw
