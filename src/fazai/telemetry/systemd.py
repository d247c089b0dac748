"""Service states and journal errors as metrics: failed units, watched units, restarts, err entries.

Metric names (the metric store has no labels, so a unit's name goes into the metric's name):

- ``units_failed``: systemd's ``NFailedUnits`` (the manager's count of units in state ``failed``);
- ``unit_active:NAME``: 1 when the watched unit ``NAME`` is ``active`` (or ``reloading``), else 0;
- ``unit_restarts:NAME``: how many times systemd restarted ``NAME`` (``NRestarts``) since the
  previous sample — "a service flapping" is a threshold on it;
- ``journal_errors``: journal entries at priority ``err`` or worse since the previous sample (at
  most :data:`MAX_ENTRIES` per sample: a storm saturates there). Its wire labels ``last1``…
  carry the newest few messages (``unit: message``, newest first, each cut to :data:`LINE_CHARS`).

Each sample runs three fixed read-only commands at once, each killed after ``timeout_s``:
``systemctl show -p NFailedUnits``, ``systemctl show -p Id,… UNITS`` and
``journalctl -p err --since @T -r -n N -o json``. They get the scrubbed environment of
:func:`fazai.targets.local.shell_env` (no secrets). Where systemd or journald is missing (a
container, a machine not booted with systemd) those metrics are left out, logged once at debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fazai.targets.local import shell_env

log = logging.getLogger("fazai.telemetry.systemd")

MAX_ENTRIES = 1000  # journal entries read per sample: bounds the work of an error storm
KEEP_LINES = 5
LINE_CHARS = 300
JOURNAL_DIRS = ("/run/log/journal", "/var/log/journal")  # volatile and persistent journald storage
# What systemd accepts in a unit name (unit-name.c: letters, digits, ":-_.\" and "@" for templates).
UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]{1,255}$")
_UNIT_PROPS = ("Id", "LoadState", "ActiveState", "SubState", "NRestarts")


def unit_key(name: str) -> str:
    """The name used in metric names: ``nginx.service`` and ``nginx`` are both ``nginx``."""
    return name.removesuffix(".service")


def parse_show(text: str) -> list[dict[str, str]]:
    """``systemctl show`` output: one ``Key=Value`` block per unit, blocks split by a blank line."""
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, sep, value = line.partition("=")
        if sep:
            blocks[-1][key] = value
    return [b for b in blocks if b]


@dataclass(frozen=True, slots=True)
class UnitState:
    """One unit as ``systemctl show`` reports it."""

    id: str
    load: str
    active: str
    sub: str
    restarts: int

    @property
    def is_active(self) -> bool:
        return self.active in ("active", "reloading")


def parse_units(text: str) -> list[UnitState]:
    """The units of ``systemctl show -p Id,LoadState,ActiveState,SubState,NRestarts U…``, in order.

    A unit systemd does not know is still listed (``LoadState=not-found``, ``ActiveState=inactive``);
    a non-service unit has no ``NRestarts`` (counted as 0)."""
    out = []
    for b in parse_show(text):
        try:
            restarts = int(b.get("NRestarts") or 0)
        except ValueError:
            restarts = 0
        out.append(
            UnitState(
                id=b.get("Id", ""),
                load=b.get("LoadState", ""),
                active=b.get("ActiveState", ""),
                sub=b.get("SubState", ""),
                restarts=restarts,
            )
        )
    return out


def parse_failed(text: str) -> int | None:
    """``NFailedUnits`` of the manager's ``systemctl show`` (None when absent or not a number)."""
    blocks = parse_show(text)
    try:
        return int(blocks[0]["NFailedUnits"]) if blocks else None
    except (KeyError, ValueError):
        return None


@dataclass(slots=True)
class JournalErrors:
    """What one journal read found after a mark."""

    count: int = 0
    newest_us: int = 0  # __REALTIME_TIMESTAMP of the newest entry counted (0: none)
    lines: list[str] = field(default_factory=list)  # newest first, at most KEEP_LINES


def _message(entry: dict[str, object]) -> str:
    msg = entry.get("MESSAGE")
    if isinstance(msg, list):  # journald stores non-UTF-8 messages as bytes: JSON gives numbers
        with contextlib.suppress(TypeError, ValueError):
            msg = bytes(int(x) for x in msg).decode("utf-8", errors="replace")
    text = msg if isinstance(msg, str) else ""
    who = entry.get("_SYSTEMD_UNIT") or entry.get("SYSLOG_IDENTIFIER")
    line = f"{who}: {text}" if isinstance(who, str) and who else text
    return line.replace("\n", " ")[:LINE_CHARS]


def parse_journal(lines: Iterable[str], after_us: int, keep: int = KEEP_LINES) -> JournalErrors:
    """Entries of ``journalctl -o json`` (one JSON object a line, any order) newer than ``after_us``.

    Lines that are not JSON objects are skipped (a truncated last line of a killed read)."""
    found: list[tuple[int, str]] = []
    for raw in lines:
        try:
            entry = json.loads(raw)
            ts = int(entry["__REALTIME_TIMESTAMP"])
        except (ValueError, KeyError, TypeError):
            continue
        if ts > after_us:
            found.append((ts, _message(entry)))
    found.sort(key=lambda x: x[0], reverse=True)
    return JournalErrors(
        count=len(found), newest_us=found[0][0] if found else 0, lines=[m for _, m in found[:keep]]
    )


@dataclass(slots=True)
class ServiceSample:
    """One sample: metric values, and the wire labels some of them carry."""

    values: dict[str, float] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


class ServiceSource:
    """Samples systemd and the journal; keeps the previous restart counts and journal mark.

    ``systemctl`` / ``journalctl`` are the argv prefixes of the two commands (default the plain
    commands on PATH; e.g. ``["systemctl", "--user"]``, ``["journalctl", "-D", DIR]``)."""

    def __init__(
        self,
        watch_units: Sequence[str] = (),
        *,
        systemctl: Sequence[str] = ("systemctl",),
        journalctl: Sequence[str] = ("journalctl",),
        timeout_s: float = 0.8,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ):
        bad = [u for u in watch_units if not UNIT_NAME.match(u)]
        if bad:
            raise ValueError(f"not a systemd unit name: {', '.join(map(repr, bad))}")
        self.watch = list(dict.fromkeys(watch_units))
        self.systemctl = list(systemctl)
        self.journalctl = list(journalctl)
        self.timeout_s = timeout_s
        self.max_entries = max_entries
        self._clock = clock
        self._restarts: dict[str, int] = {}
        self._mark_us = int(self._now() * 1e6)  # journal entries after this are new
        self._missing: set[str] = set()  # what was found missing (logged once until it is back)

    def _now(self) -> float:
        return self._clock()

    async def sample(self) -> ServiceSample:
        """Run the commands at once; every part that fails is left out of the sample."""
        out = ServiceSample()
        manager, units, journal = await asyncio.gather(
            self._run("systemd", [*self.systemctl, "show", "-p", "NFailedUnits"]),
            self._units(),
            self._journal(),
        )
        failed = parse_failed(manager) if manager is not None else None
        if failed is not None:
            out.values["units_failed"] = float(failed)
        for name, st in units:
            key = unit_key(name)
            out.values[f"unit_active:{key}"] = 1.0 if st.is_active else 0.0
            prev = self._restarts.get(key)
            self._restarts[key] = st.restarts
            # First sight: no interval to count in. A smaller count: systemd reset it (a manual start).
            delta = 0 if prev is None else (st.restarts - prev if st.restarts >= prev else st.restarts)
            out.values[f"unit_restarts:{key}"] = float(delta)
        if journal is not None:
            out.values["journal_errors"] = float(journal.count)
            if journal.lines:
                out.labels["journal_errors"] = {f"last{i + 1}": m for i, m in enumerate(journal.lines)}
        return out

    async def _units(self) -> list[tuple[str, UnitState]]:
        if not self.watch:
            return []
        props = [a for p in _UNIT_PROPS for a in ("-p", p)]
        text = await self._run("systemd", [*self.systemctl, "show", *props, "--", *self.watch])
        if text is None:
            return []
        states = parse_units(text)
        if len(states) != len(self.watch):  # blocks follow the arguments' order; anything else is odd
            log.debug("systemctl show gave %d blocks for %d units", len(states), len(self.watch))
            return []
        return list(zip(self.watch, states, strict=True))

    async def _journal(self) -> JournalErrors | None:
        started_us = int(self._now() * 1e6)
        since = self._mark_us // 1_000_000  # whole seconds: entries of that second are filtered below
        argv = [
            *self.journalctl, "-p", "err", "--since", f"@{since}", "-r", "-n", str(self.max_entries),
            "-q", "-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER", "--no-pager",
        ]  # fmt: skip
        if not self._journal_files():
            self._note_missing("journald", "no journal files")
            return None
        text = await self._run("journald", argv)
        if text is None:
            return None
        found = parse_journal(text.splitlines(), self._mark_us)
        self._mark_us = max(started_us, found.newest_us, self._mark_us)
        return found

    def _journal_files(self) -> bool:
        """Whether the journal to read has files: journalctl says nothing (exit 0) when it has none,
        and a count of 0 would then claim a clean journal on a node that keeps none."""
        argv = self.journalctl
        dirs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-D", "--directory")]
        if any(
            a.startswith(("--file", "--directory=", "--root", "--image", "-M", "--machine")) for a in argv
        ):
            return True  # another source the caller chose: let journalctl judge
        for d in dirs or JOURNAL_DIRS:
            with contextlib.suppress(OSError):
                if any(Path(d).glob("*.journal")) or any(Path(d).glob("*/*.journal")):
                    return True
        return False

    async def _run(self, what: str, argv: list[str]) -> str | None:
        """stdout of ``argv`` when it exits 0 within the timeout; None (logged once) otherwise."""
        proc = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=shell_env(),
            )
            stdout, stderr = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (OSError, TimeoutError) as e:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await proc.wait()
            reason = (
                f"{argv[0]} did not answer in {self.timeout_s:g} s" if isinstance(e, TimeoutError) else str(e)
            )
            self._note_missing(what, reason)
            return None
        if proc.returncode != 0:
            first = stderr.decode(errors="replace").strip().splitlines()
            self._note_missing(what, first[0] if first else f"exit code {proc.returncode}")
            return None
        if what in self._missing:
            self._missing.discard(what)
            log.info("%s telemetry is back", what)
        return stdout.decode(errors="replace")

    def _note_missing(self, what: str, reason: object) -> None:
        if what not in self._missing:
            self._missing.add(what)
            log.debug("no %s telemetry on this node (%s): its metrics are left out", what, reason)
