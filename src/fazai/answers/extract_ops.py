"""Extractors for logs, names on the network, certificates and containers (see :mod:`.extract`).

Names an answer reads out of the output are written in backticks: the grounding gate then checks
them as names against that output, like any value.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

from fazai.answers.extract import NoAnswer, _lines, _list, _need, extractor
from fazai.answers.values import parse_timestamp
from fazai.facts.collectors import parse_ss


@extractor("port_process")
def _port_process(out: str, slots: dict[str, str], q: str) -> str:
    port = slots.get("port", "")
    rows = [r for r in parse_ss(out) if str(r["port"]) == port]
    _need(rows, f"nothing listens on port {port}")
    r = rows[0]
    _need(r["process"], "ss did not show the process (not root?)")
    return f"`{r['process']}` with PID {r['pid']} listens on TCP port {port} ({r['address']})."


@extractor("nameservers")
def _nameservers(out: str, slots: dict[str, str], q: str) -> str:
    servers = [m.group(1) for m in re.finditer(r"^\s*nameserver\s+(\S+)", out, re.M)]
    _need(servers, "no nameserver line")
    return f"DNS nameservers: {_list(servers)}."


@extractor("hosts_address")
def _hosts_address(out: str, slots: dict[str, str], q: str) -> str:
    addrs = [ln.split()[0] for ln in _lines(out)]
    _need(addrs, "the name is not in the file")
    host = slots.get("host", "the name")
    return f"{host} resolves to {_list(addrs)}."


@extractor("cert_subject")
def _cert_subject(out: str, slots: dict[str, str], q: str) -> str:
    line = next((ln for ln in _lines(out) if ln.lower().startswith("subject")), "")
    _need(line, "no subject line")
    cn = re.search(r"CN\s*=\s*([^,/\n]+)", line)
    _need(cn, "the subject has no common name")
    return f"The subject common name is `{cn.group(1).strip()}`."  # type: ignore[union-attr]


def _docker_table(out: str) -> list[dict[str, str]]:
    """``docker ps`` (default table): columns cut at the header's positions."""
    lines = _lines(out)
    _need(lines and lines[0].startswith("CONTAINER ID"), "not docker ps output")
    head = lines[0]
    starts = [m.start() for m in re.finditer(r"(?<!\S)\S+(?: \S+)*", head)]
    names = [head[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=False)]
    rows = []
    for ln in lines[1:]:
        cells = [ln[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=False)]
        rows.append(dict(zip(names, cells, strict=False)))
    return rows


@extractor("docker_running")
def _docker_running(out: str, slots: dict[str, str], q: str) -> str:
    rows = [r for r in _docker_table(out) if r.get("STATUS", "").startswith("Up")]
    if not rows:
        return "No container is running."
    return "Running containers: " + _list([f"`{r['NAMES']}` ({r['IMAGE']})" for r in rows]) + "."


@extractor("docker_exited")
def _docker_exited(out: str, slots: dict[str, str], q: str) -> str:
    rows = [r for r in _docker_table(out) if r.get("STATUS", "").startswith("Exited")]
    if not rows:
        return "No container has exited."
    return "Exited containers: " + _list([f"`{r['NAMES']}` ({r['STATUS']})" for r in rows]) + "."


@extractor("docker_image")
def _docker_image(out: str, slots: dict[str, str], q: str) -> str:
    try:
        info = json.loads(out)
    except ValueError as e:
        raise NoAnswer("not docker inspect output") from e
    _need(isinstance(info, list) and info, "no such container")
    image = (info[0].get("Config") or {}).get("Image")
    _need(image, "no image in the inspect output")
    name = str(info[0].get("Name") or slots.get("container", "")).lstrip("/")
    return f"The container `{name}` runs the image `{image}`."


@extractor("running_services")
def _running_services(out: str, slots: dict[str, str], q: str) -> str:
    units = []
    for ln in _lines(out):
        f = ln.lstrip("●* ").split()
        if len(f) >= 4 and f[0].endswith(".service") and f[2] == "active" and f[3] == "running":
            units.append(f[0])
    _need(units, "no running service listed")
    return "Running services: " + _list(units) + "."


_SSH_OK = re.compile(r"Accepted \S+ for (\S+) from (\S+)")
_SSH_INVALID = re.compile(r"[Ii]nvalid user (\S+) from (\S+)")


@extractor("ssh_logins")
def _ssh_logins(out: str, slots: dict[str, str], q: str) -> str:
    invalid = bool(re.search(r"invalid", q, re.I))
    found = (_SSH_INVALID if invalid else _SSH_OK).findall(out)
    _need(found, "no such login in the log")
    users = Counter(u for u, _ in found)
    what = "Tried invalid SSH login names" if invalid else "Successful SSH logins by"
    return f"{what}: " + _list([f"`{u}`" for u, _ in users.most_common()]) + "."


@extractor("apt_candidate")
def _apt_candidate(out: str, slots: dict[str, str], q: str) -> str:
    m = re.search(r"^([\w.+-]+)/\S+ (\S+) \S+ \[upgradable from: ([^\]]+)\]", out, re.M)
    _need(m, "the package has no upgrade (or is not installed)")
    pkg, new, old = m.group(1), m.group(2), m.group(3)  # type: ignore[union-attr]
    return f"`{pkg}` can be upgraded from {old} to {new}."


@extractor("cert_days")
def _cert_days(out: str, slots: dict[str, str], q: str) -> str:
    line = next((ln for ln in _lines(out) if ln.lower().startswith("notafter")), "")
    when = parse_timestamp(line)
    _need(when is not None, "no notAfter date")
    days = (when - time.time()) / 86400  # type: ignore[operator]
    path = slots.get("path", "The certificate")
    end = line.split("=", 1)[-1].strip()
    if days < 0:
        return f"{path} expired {int(-days)} days ago ({end})."
    return f"{path} expires in {int(days)} days ({end})."


_FAILURE = re.compile(
    r"\[(?:emerg|alert|crit|error)\]|\b(?:error|fatal|failed|failure|denied|refused|in use|not found|"
    r"no such|cannot|can't|unable|invalid|timed out|segfault|killed)\b",
    re.I,
)


@extractor("service_failure")
def _service_failure(out: str, slots: dict[str, str], q: str) -> str:
    """Why a unit failed: the last error line the service itself logged (systemd's own lines, which
    only say that it failed, come second)."""
    name = slots.get("service", "").removesuffix(".service")
    _need(name, "no service named")
    own, manager = [], []
    for ln in _lines(out):
        m = re.match(r"^(\w{3} +\d+ [\d:]+) \S+ ([^\[:\s]+)(?:\[\d+\])?: (.*)$", ln)
        if not m or not _FAILURE.search(m.group(3)):
            continue
        unit, text = m.group(2).split("/")[0], m.group(3).strip()
        if unit == name:
            own.append((m.group(1), text))
        elif unit == "systemd" and re.search(rf"\b{re.escape(name)}(?:\.service)?\b", text):
            manager.append((m.group(1), text))
    _need(own or manager, f"no error line of {name} in the output")
    when, text = (own or manager)[-1]
    return f"`{name}` failed because: `{text}` (logged {when})."
