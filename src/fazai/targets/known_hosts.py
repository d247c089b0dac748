"""Host keys of SSH nodes: FazAI's own ``known_hosts`` file (OpenSSH format), checked on every connect.

A key that is not in the file, or that differs from the one recorded, is refused with the presented
key's fingerprint and the command that trusts it (:class:`HostKeyRefused`). Nothing is ever trusted
silently: the only writer of the file is :func:`add_known_host` (``fazai ssh trust``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from fazai.targets.base import TargetError

DEFAULT_PORT = 22


def host_pattern(host: str, port: int = DEFAULT_PORT) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The key's SHA-256 fingerprint as OpenSSH prints it (``SHA256:…``)."""
    return key.get_fingerprint("sha256")


def trust_command(host: str, port: int) -> str:
    """The command an operator runs to record this host's key."""
    return f"fazai ssh trust {host}" + (f" --port {port}" if port != DEFAULT_PORT else "")


class HostKeyRefused(TargetError):
    """The server's host key is unknown or changed: the connection was refused before any login."""

    def __init__(self, host: str, port: int, key: asyncssh.SSHKey | None, changed: bool, path: Path):
        self.host, self.port, self.key, self.changed, self.path = host, port, key, changed, path
        self.fingerprint = fingerprint(key) if key is not None else None
        self.algorithm = key.get_algorithm() if key is not None else None
        where = host_pattern(host, port)
        shown = f"{self.algorithm} {self.fingerprint}" if key is not None else "(no key presented)"
        if changed:
            msg = (
                f"the host key of {where} CHANGED: it presented {shown}, which is not the key recorded "
                f"in {path}. Someone may be intercepting the connection; refused. If the machine was "
                f"reinstalled and you checked the new fingerprint on its console "
                f"(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), remove the old key with "
                f"`ssh-keygen -R '{where}' -f {path}` and run `{trust_command(host, port)}`."
            )
        else:
            msg = (
                f"the host key of {where} is not known: it presented {shown}, and {path} has no key "
                f"for it; refused. Check that fingerprint on the machine's console, then run "
                f"`{trust_command(host, port)}`."
            )
        super().__init__(msg)


def _read(path: Path) -> asyncssh.SSHKnownHosts | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TargetError(f"cannot read the known_hosts file {path}: {e}") from e
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError) as e:
        raise TargetError(f"the known_hosts file {path} is damaged ({e}): fix or remove the bad line") from e


def known_keys(path: Path, host: str, addr: str, port: int) -> list[asyncssh.SSHKey]:
    """The keys ``path`` trusts for ``host`` (or its address) on ``port``."""
    kh = _read(path)
    if kh is None:
        return []
    keys: dict[bytes, asyncssh.SSHKey] = {}
    for k in kh.match(host, addr, port if port != DEFAULT_PORT else None)[0]:
        keys.setdefault(k.public_data, k)  # a line naming both the host and its address matches twice
    return list(keys.values())


@dataclass
class HostKeyCheck:
    """What asyncssh is given as ``known_hosts``: a callable that reads our file at connect time.

    It also records what matched, and :class:`_Client` records the key the server presented, so a
    refusal can say which key it was and whether it is new or changed.
    """

    path: Path
    matched: list[Any] = field(default_factory=list)
    presented: asyncssh.SSHKey | None = None

    def __call__(self, host: str, addr: str, port: int | None) -> tuple[list[Any], list[Any], list[Any]]:
        kh = _read(self.path)
        if kh is None:
            # An empty list, never None: None would make asyncssh skip host key checks altogether.
            return [], [], []
        trusted, cas, revoked, *_ = kh.match(host, addr, port)
        self.matched = list(trusted) + list(cas)
        return list(trusted), list(cas), list(revoked)


class _Client(asyncssh.SSHClient):
    """Records the presented host key when it is not in the trusted set, and refuses it."""

    def __init__(self, check: HostKeyCheck):
        self._check = check

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self._check.presented = key
        return False


def client_factory(check: HostKeyCheck) -> Any:
    """An asyncssh ``client_factory`` bound to ``check``."""
    return lambda: _Client(check)


def add_known_host(path: Path, host: str, port: int, key: asyncssh.SSHKey) -> bool:
    """Append ``key`` for ``host``:``port`` to ``path`` (0600, folder created). False if already there.

    Refuses (:class:`TargetError`) when the file already holds a *different* key for this host: a
    changed key is removed by the operator on purpose (``ssh-keygen -R``), never replaced here.
    """
    existing = known_keys(path, host, host, port)
    if any(k.public_data == key.public_data for k in existing):
        return False
    if existing:
        raise TargetError(
            f"{path} already has a different key for {host_pattern(host, port)} "
            f"({', '.join(fingerprint(k) for k in existing)}); if the machine really changed, remove it "
            f"first: ssh-keygen -R '{host_pattern(host, port)}' -f {path}"
        )
    line = f"{host_pattern(host, port)} {key.export_public_key('openssh').decode().strip()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line)
    return True


async def fetch_host_key(host: str, port: int, timeout_s: float) -> asyncssh.SSHKey:
    """The host key ``host``:``port`` presents (no login). :class:`TargetError` when it cannot be had."""
    try:
        # config=[]: the operator's ~/.ssh/config must not redirect what we are about to trust.
        key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port, config=[]), timeout_s)
    except TimeoutError as e:
        raise TargetError(f"{host_pattern(host, port)} did not answer within {timeout_s:g}s") from e
    except (OSError, asyncssh.Error) as e:
        raise TargetError(f"cannot reach {host_pattern(host, port)} to read its host key: {e}") from e
    if key is None:
        raise TargetError(f"{host_pattern(host, port)} presented no host key")
    return key
