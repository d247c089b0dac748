"""Extractors: a recipe command's output → the answer, as text an operator reads.

Each extractor is a pure function of (stdout, slot values, the question part) that either returns the
answer or raises :class:`NoAnswer` (the output does not hold it: the model takes over, with the output
in its context). The facts collectors' parsers are reused, so a fact is parsed one way everywhere.
Every number an extractor writes comes from the output (or a stated conversion of it), so its answers
pass the grounding check like any other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from fazai.answers.question import wants
from fazai.facts.collectors import (
    parse_cpu,
    parse_df,
    parse_failed_units,
    parse_meminfo,
    parse_os_release,
    parse_ss,
    parse_uptime,
)


class NoAnswer(ValueError):
    """The output does not hold the answer."""


Extractor = Callable[[str, dict[str, str], str], str]
EXTRACTORS: dict[str, Extractor] = {}


def extractor(name: str) -> Callable[[Extractor], Extractor]:
    def register(fn: Extractor) -> Extractor:
        EXTRACTORS[name] = fn
        return fn

    return register


def human_size(n: float) -> str:
    """Bytes in binary units with one decimal (``23.3 GiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def human_duration(seconds: float) -> str:
    """``5 hours, 16 minutes`` (days, hours, minutes; minutes only under an hour)."""
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [(d, "day"), (h, "hour"), (m, "minute")]
    shown = [f"{n} {u}{'s' if n != 1 else ''}" for n, u in parts if n] or ["0 minutes"]
    return ", ".join(shown[:3])


def _lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


def _need(cond: object, why: str) -> None:
    if not cond:
        raise NoAnswer(why)


def _list(items: list[str]) -> str:
    return ", ".join(items)


def _counted(items: list[str], one: str, many: str) -> str:
    """A listing that answers "how many": the count, then the items it counts ("One" in words: a
    count of one item is not a derivation the gate accepts)."""
    return (f"One {one}: " if len(items) == 1 else f"{len(items)} {many}: ") + _list(items) + "."


# --- system facts (the collectors' parsers) -----------------------------------------------------


@extractor("uptime")
def _uptime(out: str, slots: dict[str, str], q: str) -> str:
    s = parse_uptime(out)
    return f"Up {human_duration(s)} ({s:.0f} seconds since boot)."


@extractor("df_mount")
def _df_mount(out: str, slots: dict[str, str], q: str) -> str:
    rows = parse_df(out)
    _need(rows, "no filesystem in the df output")
    r = rows[-1]
    return (
        f"{r['mount']} is {r['use_pct']}% full: {human_size(r['used'])} used of {human_size(r['size'])}, "
        f"{human_size(r['avail'])} free ({r['device']}, {r['fstype']})."
    )


@extractor("df_over")
def _df_over(out: str, slots: dict[str, str], q: str) -> str:
    rows = parse_df(out)
    _need(rows, "no filesystem in the df output")
    limit = float(slots.get("limit", "90"))
    over = sorted((r for r in rows if r["use_pct"] > limit), key=lambda r: -r["use_pct"])
    if over:
        return "Yes: " + "; ".join(f"{r['mount']} is at {r['use_pct']}% ({r['device']})" for r in over) + "."
    top = max(rows, key=lambda r: r["use_pct"])
    return f"No filesystem is above {limit:g}%: the fullest is {top['mount']} at {top['use_pct']}%."


@extractor("meminfo")
def _meminfo(out: str, slots: dict[str, str], q: str) -> str:
    m = parse_meminfo(out)
    used = m["total"] - m["available"]
    return (
        f"{human_size(m['total'])} of RAM in total; {human_size(m['available'])} available, "
        f"{human_size(used)} in use."
    )


@extractor("nproc")
def _nproc(out: str, slots: dict[str, str], q: str) -> str:
    lines = _lines(out)
    _need(lines and lines[0].strip().isdigit(), "nproc printed no number")
    return f"{int(lines[0])} CPU cores."


@extractor("loadavg")
def _loadavg(out: str, slots: dict[str, str], q: str) -> str:
    c = parse_cpu("0\n" + out) if not out.strip().split("\n")[0].isdigit() else parse_cpu(out)
    return f"Load average {c['load1']} (1 min), {c['load5']} (5 min), {c['load15']} (15 min)."


@extractor("first_line")
def _first_line(out: str, slots: dict[str, str], q: str) -> str:
    lines = _lines(out)
    _need(lines, "empty output")
    return lines[0].strip()


@extractor("os_release")
def _os_release(out: str, slots: dict[str, str], q: str) -> str:
    info = parse_os_release(out)
    point = next((ln.strip() for ln in _lines(out) if re.fullmatch(r"\s*\d+(?:\.\d+)+\s*", ln)), None)
    name = info.get("pretty_name") or info["id"]
    return name + (f", version {point}" if point else "") + "."


@extractor("listening_ports")
def _listening(out: str, slots: dict[str, str], q: str) -> str:
    rows = parse_ss(out)
    _need(rows, "nothing listening in the ss output")
    ports = sorted({(r["port"], r["process"] or "?") for r in rows})
    if wants(q) == "number":
        return _counted([f"{p} ({name})" for p, name in ports], "port listening", "ports listening")
    return "Listening: " + _list([f"{p} ({name})" for p, name in ports]) + "."


@extractor("process_port")
def _process_port(out: str, slots: dict[str, str], q: str) -> str:
    name = slots.get("process", "").lower()
    rows = [r for r in parse_ss(out) if name and name in str(r["process"] or "").lower()]
    _need(rows, f"no listening socket of {name!r}")
    ports = sorted({r["port"] for r in rows})
    return f"{rows[0]['process']} listens on port {_list([str(p) for p in ports])}."


@extractor("failed_units")
def _failed_units(out: str, slots: dict[str, str], q: str) -> str:
    units = [u["unit"] for u in parse_failed_units(out)]
    if not units:
        return "No systemd unit has failed."
    if wants(q) == "number":
        return _counted(units, "unit has failed", "units have failed")
    return "Failed units: " + _list(units) + "."


@extractor("service_state")
def _service_state(out: str, slots: dict[str, str], q: str) -> str:
    state = (_lines(out) or ["unknown"])[0].strip()
    svc = slots.get("service", "the service")
    if state == "active":
        return f"Yes, {svc} is active (running)."
    return f"No, {svc} is {state} (not running)."


# --- users, groups, processes, files --------------------------------------------------------------


@extractor("passwd_field")
def _passwd_field(out: str, slots: dict[str, str], q: str) -> str:
    lines = _lines(out)
    _need(lines, "no such user")
    f = lines[0].split(":")
    _need(len(f) >= 7, "not a passwd line")
    low = q.lower()
    if "home" in low:
        return f"The home directory of {f[0]} is {f[5]}."
    if "shell" in low:
        return f"The login shell of {f[0]} is {f[6]}."
    return f"User {f[0]} has UID {f[2]} (GID {f[3]}, home {f[5]}, shell {f[6]})."


@extractor("names_listed")
def _names_listed(out: str, slots: dict[str, str], q: str) -> str:
    names = [ln.strip() for ln in _lines(out)]
    _need(names, "none found")
    return f"{len(names)}: {_list(names)}."


@extractor("group_members")
def _group_members(out: str, slots: dict[str, str], q: str) -> str:
    lines = _lines(out)
    _need(lines, "no such group")
    f = lines[0].split(":")
    members = [m for m in (f[3].split(",") if len(f) > 3 else []) if m]
    if not members:
        return f"The group {f[0]} has no listed members."
    return f"Members of {f[0]}: {_list([f'`{m}`' for m in members])}."


@extractor("id_groups")
def _id_groups(out: str, slots: dict[str, str], q: str) -> str:
    groups = (_lines(out) or [""])[0].split()
    _need(groups, "no groups")
    return f"{slots.get('user', 'The user')} is in: {_list([f'`{g}`' for g in groups])}."


@extractor("count")
def _count(out: str, slots: dict[str, str], q: str) -> str:
    lines = _lines(out)
    _need(lines and lines[-1].strip().isdigit(), "no count printed")
    what = next((slots[k] for k in ("process", "user", "service", "package") if k in slots), "")
    return f"{int(lines[-1])}" + (f" ({what})" if what else "") + "."


@extractor("pids")
def _pids(out: str, slots: dict[str, str], q: str) -> str:
    pids = [ln.strip() for ln in _lines(out) if ln.strip().isdigit()]
    _need(pids, "no such process")
    name = slots.get("process", "the process")
    return f"PID of {name}: {_list(pids)}."


@extractor("top_process")
def _top_process(out: str, slots: dict[str, str], q: str) -> str:
    split = [ln.split(None, 2) for ln in _lines(out)]
    rows = [(r[0], r[1], r[2].strip()) for r in split if len(r) == 3 and r[0].isdigit()]
    _need(rows, "no process listed")
    # FazAI's own process is on every machine it reads; the operator asks about their workload.
    own = [r for r in rows if r[2] in _FAZAI_PROCESSES]
    others = [r for r in rows if r[2] not in _FAZAI_PROCESSES]
    _need(others, "only FazAI's own processes listed")
    pid, value, name = others[0]
    what = f"memory: {human_size(int(value) * 1024)}" if value.isdigit() else f"CPU: {value}%"
    said = f"`{name}` with PID {pid} uses the most {what}."
    if own and rows.index(own[0]) < rows.index(others[0]):
        said += f" (FazAI itself, `{own[0][2]}` with PID {own[0][0]}, is not counted.)"
    return said


_FAZAI_PROCESSES = frozenset({"fazai", "fazaid", "fazai-agent", "fazai-worker"})


@extractor("largest_file")
def _largest_file(out: str, slots: dict[str, str], q: str) -> str:
    rows = [ln.split("\t", 1) for ln in _lines(out)]
    rows = [r for r in rows if len(r) == 2 and r[0].isdigit()]
    _need(rows, "no file found")
    size, path = rows[0]
    return f"The largest file is {path} ({human_size(int(size))})."


@extractor("files_listed")
def _files_listed(out: str, slots: dict[str, str], q: str) -> str:
    paths = [ln.strip() for ln in _lines(out)]
    if not paths:
        return "No file matches."
    return _counted(paths, "file", "files")


@extractor("stat_owner")
def _stat_owner(out: str, slots: dict[str, str], q: str) -> str:
    f = (_lines(out) or [""])[0].split()
    _need(len(f) >= 4, "no stat output")
    user, group, octal, mode = f[:4]
    if re.search(r"perm|mode|chmod|permiss", q, re.I):
        return f"{slots.get('path', 'It')} has mode {octal} ({mode}), owner {user}:{group}."
    return f"{slots.get('path', 'It')} is owned by user {user} (group {group})."


@extractor("cert_first")
def _cert_first(out: str, slots: dict[str, str], q: str) -> str:
    certs = []
    for ln in _lines(out):
        m = re.match(r"(\S+)\s+notAfter=(.+)$", ln.strip())
        if m:
            try:
                when = datetime.strptime(m.group(2).strip().replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
            except ValueError:
                continue
            certs.append((when, m.group(1), m.group(2).strip()))
    _need(certs, "no certificate dates")
    when, path, raw = min(certs)
    if len(certs) == 1:
        return f"{path} expires on {raw}."
    return f"{path} expires first, on {raw}."


# --- services and their logs -------------------------------------------------------------------------


@extractor("fail2ban_total")
def _fail2ban_total(out: str, slots: dict[str, str], q: str) -> str:
    jails = re.findall(r"Status for the jail:\s*(\S+)(?:.|\n)*?Currently banned:\s*(\d+)", out)
    _need(jails, "no jail status in the output")
    total = sum(int(n) for _, n in jails)
    return f"{total} IPs are banned (" + ", ".join(f"{n} in {j}" for j, n in jails) + ")."


@extractor("fail2ban_jail")
def _fail2ban_jail(out: str, slots: dict[str, str], q: str) -> str:
    m = re.search(r"Currently banned:\s*(\d+)", out)
    _need(m, "no 'Currently banned' line")
    ips = re.search(r"Banned IP list:\s*(.*)", out)
    listed = f": {ips.group(1).strip()}" if ips and ips.group(1).strip() else ""
    return f"{m.group(1)} IPs are currently banned in the {slots.get('jail', '')} jail{listed}."  # type: ignore[union-attr]


@extractor("fail2ban_ip")
def _fail2ban_ip(out: str, slots: dict[str, str], q: str) -> str:
    ip = slots.get("ip", "")
    jails = re.findall(r"Status for the jail:\s*(\S+)(?:.|\n)*?Banned IP list:[ \t]*([^\n]*)", out)
    _need(jails, "no jail status with a banned IP list in the output")
    hits = [j for j, ips in jails if ip in ips.replace(",", " ").split()]
    if hits:
        return f"Yes: {ip} is banned in the {_list(hits)} jail{'s' if len(hits) > 1 else ''}."
    return f"No: {ip} is not in the banned list of any jail ({_list([j for j, _ in jails])})."


@extractor("fail2ban_jails")
def _fail2ban_jails(out: str, slots: dict[str, str], q: str) -> str:
    m = re.search(r"Jail list:\s*(.*)", out)
    _need(m, "no jail list")
    jails = [j.strip() for j in m.group(1).split(",") if j.strip()]  # type: ignore[union-attr]
    return f"{len(jails)} jails: {_list(jails)}." if jails else "No jail is configured."


@extractor("apt_upgradable")
def _apt_upgradable(out: str, slots: dict[str, str], q: str) -> str:
    rows = [ln for ln in _lines(out) if "upgradable from" in ln]
    # "How many of them are security updates / from backports": the suite after the slash says.
    suite = re.search(r"\b(security|backports|updates|proposed)\b", q, re.I)
    if suite:
        word = suite.group(1).lower()
        rows = [r for r in rows if word in r.split()[0].split("/", 1)[-1].lower()]
        pkgs = [r.split("/", 1)[0] for r in rows]
        if not pkgs:
            return f"No upgradable package comes from a {word} suite."
        return _counted(
            pkgs,
            f"upgradable package comes from a {word} suite",
            f"upgradable packages come from a {word} suite",
        )
    pkgs = [r.split("/", 1)[0] for r in rows]
    if not pkgs:
        return "No package can be upgraded."
    return f"{len(pkgs)} packages can be upgraded: {_list(pkgs)}."


@extractor("sshd_setting")
def _sshd_setting(out: str, slots: dict[str, str], q: str) -> str:
    """The first value sshd takes (``sshd -T`` or the files, drop-ins first), yes/no questions answered."""
    key = slots.get("setting", "")
    for ln in _lines(out):
        m = re.match(rf"\s*({re.escape(key)})\s+(.+?)\s*$", ln, re.I)
        if m:
            name, value = m.group(1), m.group(2)
            low = value.lower()
            if wants(q) == "yes_no" or key.lower() == "permitrootlogin":
                verdict = "No" if low == "no" else "Yes" if low == "yes" else "Partly"
                return f"{verdict}: {name} {value}."
            return f"{name} {value}."
    raise NoAnswer(f"{key} is not set in the output (the default applies)")


@extractor("nft_input")
def _nft_input(out: str, slots: dict[str, str], q: str) -> str:
    chain = re.search(r"chain input \{(.*?)\n\s*\}", out, re.S)
    _need(chain, "no input chain")
    body = chain.group(1)  # type: ignore[union-attr]
    policy = re.search(r"policy (\w+);", body)
    if re.search(r"polic", q, re.I):
        _need(policy, "no policy")
        return f"The input chain's default policy is `{policy.group(1)}`."  # type: ignore[union-attr]
    if re.search(r"\b(?:drop|dropp|block|reject|deny|denied|bloque|descart)", q, re.I):
        rules = [ln.strip() for ln in body.splitlines() if re.search(r"\b(?:drop|reject)\s*$", ln.strip())]
        sources = [s for r in rules for s in re.findall(r"\bi(?:p6?)? saddr (\S+)", r)]
        _need(rules, "no drop or reject rule in the input chain")
        if sources:
            return "Dropped by the input chain: traffic from " + _list([f"`{x}`" for x in sources]) + "."
        return "Rules of the input chain that drop: " + "; ".join(f"`{r}`" for r in rules) + "."
    ports: list[str] = []
    for m in re.finditer(r"tcp dport (\{[^}]*\}|\d+) accept", body):
        ports += re.findall(r"\d+", m.group(1))
    _need(ports, "no accepted TCP ports")
    return "TCP ports accepted by the input chain: " + _list(ports) + "."


@extractor("iptables_drops")
def _iptables_drops(out: str, slots: dict[str, str], q: str) -> str:
    srcs = re.findall(r"-A INPUT -s (\S+) -j (?:DROP|REJECT)", out)
    return f"{len(srcs)} source addresses are dropped: {_list(srcs)}." if srcs else "No source is dropped."


@extractor("journal_top_unit")
def _journal_top_unit(out: str, slots: dict[str, str], q: str) -> str:
    units = Counter(
        m.group(1).split("/")[0] for m in re.finditer(r"^\S+ +\d+ [\d:]+ \S+ ([^\[:\s]+)", out, re.M)
    )
    _need(units, "no journal lines")
    unit, n = units.most_common(1)[0]
    return f"`{unit}` logged the most errors in the journal: {n} of {sum(units.values())} error lines."


@extractor("count_by_first")
def _count_by_first(out: str, slots: dict[str, str], q: str) -> str:
    """``uniq -c | sort -rn`` output: the top value and its count."""
    rows = [ln.split(None, 1) for ln in _lines(out)]
    rows = [r for r in rows if len(r) == 2 and r[0].isdigit()]
    _need(rows, "nothing counted")
    n, value = rows[0]
    return f"`{value.strip()}` is the most frequent: {n} times."


@extractor("config_value")
def _config_value(out: str, slots: dict[str, str], q: str) -> str:
    """The value of the setting the question names: ``key = value``, ``key value;`` or ``key: value``."""
    words = {w.lower() for w in re.findall(r"[A-Za-z_][\w.-]+", q)}
    for ln in _lines(out):
        m = re.match(r"\s*([A-Za-z_][\w.-]*)\s*(?:=|:|\s)\s*(.+?);?\s*$", ln)
        if m and m.group(1).lower() in words and not ln.lstrip().startswith("#"):
            return f"{m.group(1)} = {m.group(2).strip()}"
    raise NoAnswer("the setting is not in the file")


@extractor("cron_time")
def _cron_time(out: str, slots: dict[str, str], q: str) -> str:
    for ln in _lines(out):
        f = ln.split()
        if f and f[0] in _CRON_NICKNAMES:
            return f"{_CRON_NICKNAMES[f[0]]} (`{f[0]}`): {' '.join(f[1:])}"
        if len(f) < 6 or not re.fullmatch(r"[\d*/,-]+", f[0]) or not re.fullmatch(r"[\d*/,-]+", f[1]):
            continue
        days = "every day" if f[2:5] == ["*", "*", "*"] else f"(day {f[2]}, month {f[3]}, weekday {f[4]})"
        what = " ".join(f[5:])
        if f[0].isdigit() and re.fullmatch(r"\d+(?:,\d+)*", f[1]):
            times = " and ".join(f"{int(h):02d}:{int(f[0]):02d}" for h in f[1].split(","))
            return f"At {times} {days}: {what}"
        if (m := re.fullmatch(r"\*/(\d+)", f[0])) and f[1] == "*":
            return f"Every {m.group(1)} minutes {days}: {what}"
        if f[0].isdigit() and (m := re.fullmatch(r"\*/(\d+)", f[1])):
            return f"Every {m.group(1)} hours at minute {f[0]} {days}: {what}"
    raise NoAnswer("no cron line with a schedule")


_CRON_NICKNAMES = {
    "@reboot": "At every boot",
    "@yearly": "Once a year, on 1 January at midnight",
    "@annually": "Once a year, on 1 January at midnight",
    "@monthly": "Once a month, on the 1st at midnight",
    "@weekly": "Once a week, on Sunday at midnight",
    "@daily": "Once a day, at midnight",
    "@midnight": "Once a day, at midnight",
    "@hourly": "Once an hour, at the start of the hour",
}


# Registers the extractors of logs, the network, certificates and containers (kept in their own module).
from fazai.answers import extract_ops  # noqa: E402, F401
