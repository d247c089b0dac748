"""The audit trail's anchor: the newest record this host has seen, kept outside the database.

The chain in the database catches edited, removed and reordered records, but not the removal of the
newest ones: a shorter chain is still a valid chain. The anchor closes that gap. It is a small file
(``<state_dir>/audit.anchor``, mode 0600) holding ``seq`` and ``hash`` of the newest record, signed
with the audit key; :meth:`AuditLog.verify` then requires the chain to reach that record, with that
hash.

Rules (docs/access.md, "Audit trail"):

* The anchor is written **after** the record is committed, never before, so in every honest run the
  anchor is at or behind the chain. A crash between the commit and the anchor write leaves it one
  record behind: that is not an alarm (the chain only has to *reach* the anchor), and the next
  append or verify moves it forward.
* The anchor only moves forward, and only onto a record that descends from the record it names
  (that record is still in the chain, with the same hash). So new appends after a truncation do not
  paper over it: the anchor stays where it was until an admin accepts the loss
  (``fazai audit anchor --reset``, itself an audit record).
* Written atomically (a temporary file, fsync, rename, fsync of the folder) under an exclusive
  ``flock`` so the daemon and the CLI on one host never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class AnchorError(Exception):
    """The anchor file exists but cannot be trusted (unreadable, malformed, or its HMAC is wrong)."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """The newest record a host has seen: its number, its hash, and when the anchor was written."""

    seq: int
    hash: str
    ts: str
    path: Path | None = None


def anchor_path(state_dir: Path) -> Path:
    return Path(state_dir) / "audit.anchor"


def _mac(key: bytes, seq: int, h: str, ts: str) -> str:
    body = json.dumps(["fazai-audit-anchor", 1, seq, h, ts], separators=(",", ":")).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def read_anchor(path: Path, key: bytes) -> Anchor | None:
    """The anchor in ``path``, None when there is no file; :class:`AnchorError` when it is not genuine."""
    path = Path(path)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AnchorError(f"the anchor file {path} cannot be read: {e}") from e
    try:
        d = json.loads(raw)
        seq, h, ts, mac = int(d["seq"]), str(d["hash"]), str(d["ts"]), str(d["mac"])
    except (ValueError, KeyError, TypeError) as e:
        raise AnchorError(f"the anchor file {path} is malformed ({e})") from e
    if not hmac.compare_digest(mac, _mac(key, seq, h, ts)):
        raise AnchorError(f"the anchor file {path} was altered (its HMAC does not match)")
    return Anchor(seq, h, ts, path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the anchor (``audit.anchor.lock``), across processes of one host.

    Callers hold it only around synchronous file work (no ``await`` inside), so coroutines of one
    process never wait on each other's lock.
    """
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_anchor(path: Path, key: bytes, seq: int, h: str, ts: str) -> Anchor:
    """Replace the anchor atomically (call with :func:`locked` held)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = json.dumps({"v": 1, "seq": seq, "hash": h, "ts": ts, "mac": _mac(key, seq, h, ts)})
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crash of this pid number
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a power cut
    finally:
        os.close(dfd)
    return Anchor(seq, h, ts, path)
