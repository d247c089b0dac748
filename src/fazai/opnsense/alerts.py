"""Suricata EVE ``alert`` events: parse eve.json lines and OPNsense ``queryAlerts`` rows into one
typed alert, and follow a growing (and rotating) eve.json."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel


class SuricataAlert(BaseModel):
    """One IDS/IPS alert, whatever its source (eve.json line or OPNsense API row)."""

    timestamp: datetime
    signature: str
    signature_id: int
    action: Literal["allowed", "blocked"] = "allowed"
    src_ip: str = ""
    src_port: int | None = None
    dest_ip: str = ""
    dest_port: int | None = None
    proto: str = ""
    app_proto: str | None = None
    in_iface: str | None = None
    flow_id: int | None = None
    # Only eve.json keeps these: queryAlerts replaces `alert` by the signature string.
    gid: int | None = None
    rev: int | None = None
    category: str | None = None
    severity: int | None = None
    source: Literal["eve", "api"] = "eve"
    filepos: int | None = None
    fileid: str | None = None

    def event_data(self) -> dict[str, Any]:
        """Data for a session event (JSON-ready)."""
        return self.model_dump(mode="json")

    def one_line(self) -> str:
        """Short human form."""
        sev = f" sev={self.severity}" if self.severity is not None else ""
        src = f"{self.src_ip}:{self.src_port}" if self.src_port is not None else self.src_ip
        dst = f"{self.dest_ip}:{self.dest_port}" if self.dest_port is not None else self.dest_ip
        head = f"{self.timestamp.isoformat()} [{self.action}] {self.signature} (sid {self.signature_id}{sev})"
        return f"{head} {self.proto} {src} → {dst}"


def _ts(value: str) -> datetime:
    # EVE uses "+0000"-style offsets, which fromisoformat accepts from Python 3.11.
    return datetime.fromisoformat(value)


def parse_eve_record(rec: dict[str, Any]) -> SuricataAlert | None:
    """A decoded EVE record → alert, or None if it is not an alert event."""
    alert = rec.get("alert")
    if rec.get("event_type") != "alert" or not isinstance(alert, dict):
        return None
    return SuricataAlert(
        timestamp=_ts(rec["timestamp"]),
        signature=alert.get("signature", ""),
        signature_id=int(alert.get("signature_id", 0)),
        action=alert.get("action", "allowed"),
        gid=alert.get("gid"),
        rev=alert.get("rev"),
        category=alert.get("category"),
        severity=alert.get("severity"),
        src_ip=rec.get("src_ip", ""),
        src_port=rec.get("src_port"),
        dest_ip=rec.get("dest_ip", ""),
        dest_port=rec.get("dest_port"),
        proto=rec.get("proto", ""),
        app_proto=rec.get("app_proto"),
        in_iface=rec.get("in_iface"),
        flow_id=rec.get("flow_id"),
        source="eve",
    )


def parse_eve_line(line: str) -> SuricataAlert | None:
    """One eve.json line → alert; None for other event types and blank lines.

    Raises ValueError (naming the problem) for a line that is not a JSON object.
    """
    line = line.strip()
    if not line:
        return None
    try:
        rec = json.loads(line)
    except ValueError as e:
        raise ValueError(f"not a JSON line: {e}") from e
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    return parse_eve_record(rec)


def parse_query_alerts_row(row: dict[str, Any]) -> SuricataAlert:
    """A row of ``ids/service/queryAlerts`` (``alert`` is the signature string) → alert."""
    return SuricataAlert(
        timestamp=_ts(row["timestamp"]),
        signature=str(row.get("alert", "")),
        signature_id=int(row.get("alert_sid", 0)),
        action=row.get("alert_action", "allowed"),
        src_ip=row.get("src_ip", ""),
        src_port=row.get("src_port"),
        dest_ip=row.get("dest_ip", ""),
        dest_port=row.get("dest_port"),
        proto=row.get("proto", ""),
        app_proto=row.get("app_proto"),
        in_iface=row.get("in_iface"),
        flow_id=row.get("flow_id"),
        source="api",
        filepos=row.get("filepos"),
        fileid=row.get("fileid"),
    )


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _read_from(path: Path, pos: int) -> bytes:
    # A local file read of what was appended since the last poll: short, so done inline.
    with path.open("rb") as f:
        f.seek(pos)
        return f.read()


async def tail_eve(
    path: Path, *, from_start: bool = False, follow: bool = True, poll_s: float = 0.5
) -> AsyncIterator[SuricataAlert]:
    """Yield alerts appended to ``path``; survives rotation (new inode) and truncation.

    Bad lines are skipped (a damaged line must not stop the stream).
    """
    st = _stat(path)
    pos = 0 if from_start or st is None else st.st_size
    inode = st.st_ino if st is not None else None
    buf = b""
    while True:
        st = _stat(path)
        if st is not None:
            if inode != st.st_ino or st.st_size < pos:  # rotated or truncated: start the new file
                inode, pos, buf = st.st_ino, 0, b""
            if st.st_size > pos:
                chunk = _read_from(path, pos)
                pos += len(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    try:
                        alert = parse_eve_line(raw.decode("utf-8", "replace"))
                    except (ValueError, KeyError):
                        continue
                    if alert is not None:
                        yield alert
        if not follow:
            return
        await asyncio.sleep(poll_s)
