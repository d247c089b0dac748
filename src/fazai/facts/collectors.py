"""Fact collectors in the pyinfra style: each is one shell command plus a pure parser of its output.

Parsers take the command's stdout and return plain data (dicts, lists); they never run anything, so
they are tested on captured real outputs (``tests/data/facts/``). A collector whose command fails is
reported as not collected, with the reason — never as an empty, healthy-looking value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Collector:
    """One fact: the command that prints it and the parser that reads it."""

    name: str
    command: str
    parse: Callable[[str], Any]
    ok_codes: tuple[int, ...] = (0,)
    # stderr text that means "could not look" even with exit code 0 (journalctl without a journal).
    fail_markers: tuple[str, ...] = ()


def parse_os_release(out: str) -> dict[str, str]:
    """``/etc/os-release`` → {"id", "version_id", "pretty_name", …} (lower-case keys)."""
    info: dict[str, str] = {}
    for line in out.splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        k, v = line.split("=", 1)
        info[k.strip().lower()] = v.strip().strip('"').strip("'")
    if "id" not in info:
        raise ValueError("no ID= line in os-release")
    return {
        k: info[k] for k in ("id", "version_id", "pretty_name", "version_codename", "id_like") if k in info
    }


def parse_kernel(out: str) -> dict[str, str]:
    """``uname -srm`` → {"name", "release", "machine"}."""
    parts = out.split()
    if len(parts) < 3:
        raise ValueError(f"unexpected uname output: {out!r}")
    return {"name": parts[0], "release": parts[1], "machine": parts[-1]}


def parse_uptime(out: str) -> float:
    """``/proc/uptime`` → seconds since boot."""
    return float(out.split()[0])


def parse_cpu(out: str) -> dict[str, Any]:
    """``nproc; cat /proc/loadavg; grep -m1 'model name' /proc/cpuinfo`` → cores, load averages, model."""
    lines = [x for x in out.splitlines() if x.strip()]
    cores = int(lines[0])
    load = [float(x) for x in lines[1].split()[:3]]
    model = lines[2].split(":", 1)[1].strip() if len(lines) > 2 and ":" in lines[2] else None
    return {"cores": cores, "load1": load[0], "load5": load[1], "load15": load[2], "model": model}


def parse_meminfo(out: str) -> dict[str, int]:
    """``/proc/meminfo`` → bytes: total, available, swap_total, swap_free."""
    kb: dict[str, int] = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)", line)
        if m:
            kb[m.group(1)] = int(m.group(2))
    if "MemTotal" not in kb:
        raise ValueError("no MemTotal in meminfo")
    avail = kb.get("MemAvailable", kb.get("MemFree", 0) + kb.get("Cached", 0))
    return {
        "total": kb["MemTotal"] * 1024,
        "available": avail * 1024,
        "swap_total": kb.get("SwapTotal", 0) * 1024,
        "swap_free": kb.get("SwapFree", 0) * 1024,
    }


def parse_df(out: str) -> list[dict[str, Any]]:
    """``df -P -T -k`` → [{"mount", "device", "fstype", "size", "used", "avail", "use_pct"}] (bytes)."""
    rows = []
    for line in out.splitlines()[1:]:
        p = line.split()
        if len(p) < 7 or not p[2].isdigit():
            continue
        rows.append(
            {
                "device": p[0], "fstype": p[1], "size": int(p[2]) * 1024, "used": int(p[3]) * 1024,
                "avail": int(p[4]) * 1024, "use_pct": int(p[5].rstrip("%") or 0), "mount": " ".join(p[6:]),
            }
        )  # fmt: skip
    return rows


_PROC_RE = re.compile(r'\("([^"]+)",pid=(\d+)')


_NETIDS = frozenset({"tcp", "udp", "raw", "sctp", "mptcp", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl"})


def parse_ss(out: str) -> list[dict[str, Any]]:
    """``ss -H -tulpn`` (or ``-tlnp``) → [{"proto", "address", "port", "process", "pid"}], sorted,
    de-duplicated."""
    seen: set[tuple[str, str, int]] = set()
    rows = []
    for line in out.splitlines():
        p = line.split()
        if p and p[0] not in _NETIDS:  # `ss -t…` alone prints no Netid column: TCP, one column less
            p = ["tcp", *p]
        if len(p) < 5:
            continue
        proto, local = p[0], p[4]
        addr, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        m = _PROC_RE.search(line)
        key = (proto, addr, int(port))
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {"proto": proto, "address": addr, "port": int(port), "process": m.group(1) if m else None,
             "pid": int(m.group(2)) if m else None}
        )  # fmt: skip
    return sorted(rows, key=lambda r: (r["proto"], r["port"], r["address"]))


def parse_failed_units(out: str) -> list[dict[str, str]]:
    """``systemctl list-units --state=failed --no-legend --plain`` → [{"unit", "description"}]."""
    rows = []
    for line in out.splitlines():
        p = line.split()
        if p and p[0] in ("●", "*", "×"):  # some versions prefix a failure marker
            p = p[1:]
        # Only unit rows: a header, a legend or a "2 loaded units listed." footer (shown when the
        # flags are missing or ignored) is not a unit.
        if len(p) >= 4 and _UNIT.fullmatch(p[0]) and "failed" in p[1:4]:
            rows.append({"unit": p[0], "description": " ".join(p[4:])})
    return rows


_UNIT = re.compile(r"[\w@:.\\-]+\.(service|socket|mount|automount|swap|target|path|timer|slice|scope|device)")


def parse_journal_json(out: str) -> list[dict[str, Any]]:
    """``journalctl -o json`` lines → [{"ts", "unit", "message"}] (oldest first)."""
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("MESSAGE")
        if isinstance(msg, list):  # journald emits non-UTF-8 messages as byte arrays
            msg = bytes(x for x in msg if isinstance(x, int)).decode("utf-8", "replace")
        ts = e.get("__REALTIME_TIMESTAMP")
        rows.append(
            {
                "ts": int(ts) / 1e6 if isinstance(ts, str) and ts.isdigit() else None,
                "unit": e.get("_SYSTEMD_UNIT") or e.get("SYSLOG_IDENTIFIER") or e.get("_COMM") or "?",
                "message": str(msg or "")[:300],
            }
        )
    return rows


def parse_services(out: str) -> list[dict[str, str]]:
    """Lines ``<unit> <active-state> <enabled-state>`` → [{"unit", "active", "enabled"}]."""
    rows = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3:
            rows.append({"unit": p[0], "active": p[1], "enabled": p[2]})
    return rows


KEY_SERVICES = (
    *(
        "ssh",
        "nginx",
        "apache2",
        "postfix",
        "dovecot",
        "exim4",
        "fail2ban",
        "nftables",
        "docker",
        "containerd",
    ),
    *(
        "mariadb",
        "mysql",
        "postgresql",
        "redis-server",
        "bind9",
        "named",
        "unbound",
        "haproxy",
        "spamassassin",
    ),
    *("clamav-daemon", "rspamd", "cron", "chrony", "ntp", "systemd-journald", "rsyslog"),
)

_SERVICES_CMD = (
    "for u in " + " ".join(KEY_SERVICES) + "; do "
    'en=$(systemctl is-enabled "$u.service" 2>/dev/null); '
    '[ -z "$en" ] && continue; '
    'ac=$(systemctl is-active "$u.service" 2>/dev/null); '
    'echo "$u ${ac:-unknown} $en"; done'
)

_NO_SYSTEMD = ("not been booted with systemd", "Failed to connect to bus")

COLLECTORS: tuple[Collector, ...] = (
    Collector("os", "cat /etc/os-release", parse_os_release),
    Collector("kernel", "uname -srm", parse_kernel),
    Collector("uptime", "cat /proc/uptime", parse_uptime),
    Collector("cpu", "nproc; cat /proc/loadavg; grep -m1 'model name' /proc/cpuinfo || true", parse_cpu),
    Collector("memory", "cat /proc/meminfo", parse_meminfo),
    Collector("disks", "df -P -T -k -x tmpfs -x devtmpfs -x squashfs 2>/dev/null || true", parse_df),
    Collector("ports", "ss -H -tulpn", parse_ss),
    Collector(
        "failed_units",
        "systemctl list-units --state=failed --no-legend --plain --no-pager",
        parse_failed_units,
        fail_markers=_NO_SYSTEMD,
    ),
    Collector(
        "journal_errors",
        # Without journal files journalctl prints nothing and exits 0: say so instead of "no errors".
        '{ [ -d /run/log/journal ] || [ -n "$(ls -A /var/log/journal 2>/dev/null)" ]; } '
        "|| { echo 'no journal files (journald is not running here)' >&2; exit 3; }; "
        "journalctl -p err -b -n 20 -o json --no-pager",
        parse_journal_json,
        fail_markers=("No journal files were found",),
    ),
    Collector("services", _SERVICES_CMD, parse_services),
)
