"""config.xml backups: download from the firewall, keep with time and SHA-256, diff two."""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fazai.opnsense.client import OPNsenseClient
from fazai.opnsense.errors import OperationFailed


@dataclass
class Backup:
    """One stored config.xml."""

    id: str
    time: float
    sha256: str
    size: int
    file: str
    note: str = ""


class BackupStore:
    """Backups of one firewall under ``<dir>`` with an ``index.json``."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.index = self.dir / "index.json"

    def list(self) -> list[Backup]:
        """All backups, oldest first."""
        if not self.index.exists():
            return []
        return [Backup(**b) for b in json.loads(self.index.read_text())]

    def save(self, xml: bytes, note: str = "", now: float | None = None) -> Backup:
        """Store ``xml``; a copy identical to the newest backup is not stored twice."""
        digest = hashlib.sha256(xml).hexdigest()
        items = self.list()
        if items and items[-1].sha256 == digest:
            return items[-1]
        t = time.time() if now is None else now
        bid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t)) + "-" + digest[:12]
        self.dir.mkdir(parents=True, exist_ok=True)
        file = f"config-{bid}.xml"
        (self.dir / file).write_bytes(xml)
        (self.dir / file).chmod(0o600)  # config.xml holds password hashes and keys
        rec = Backup(bid, t, digest, len(xml), file, note)
        self.index.write_text(json.dumps([asdict(b) for b in [*items, rec]], indent=2) + "\n")
        return rec

    def get(self, ident: str) -> Backup:
        """A backup by id or unique id prefix (also ``latest`` and ``previous``)."""
        items = self.list()
        if ident in ("latest", "previous") and len(items) >= (1 if ident == "latest" else 2):
            return items[-1] if ident == "latest" else items[-2]
        found = [b for b in items if b.id.startswith(ident)]
        if len(found) != 1:
            ids = ", ".join(b.id for b in items[-5:]) or "none"
            raise OperationFailed(
                f"no single backup matches {ident!r} (recent: {ids}); see `fazai opnsense backup list`."
            )
        return found[0]

    def read(self, ident: str) -> str:
        """The XML text of a backup."""
        return (self.dir / self.get(ident).file).read_text(errors="replace")

    def diff(self, a: str, b: str) -> str:
        """Unified diff of two backups (empty when identical)."""
        ba, bb = self.get(a), self.get(b)
        lines = difflib.unified_diff(
            self.read(a).splitlines(keepends=True),
            self.read(b).splitlines(keepends=True),
            fromfile=ba.file,
            tofile=bb.file,
        )
        return "".join(lines)


async def pull_backup(client: OPNsenseClient, store: BackupStore, note: str = "") -> Backup:
    """Download the current config.xml (``core/backup/download/this``) and store it."""
    xml = await client.get_raw("core/backup/download/this")
    if not xml.lstrip().startswith(b"<?xml") and b"<opnsense" not in xml[:4096]:
        raise OperationFailed(
            "the firewall did not return a config.xml (empty or not XML). The API user needs the "
            "'Diagnostics: Configuration History' / backup privilege; see docs/opnsense.md."
        )
    return store.save(xml, note)
