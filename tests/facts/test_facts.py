"""Fact parsers on captured outputs, the collector engine (budget, failures, any target), one live run."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from fazai.facts import COLLECTORS, Collector, ExecResult, Facts, LocalRunner, collect_facts
from fazai.facts import collectors as c

DATA = Path(__file__).resolve().parents[1] / "data" / "facts"


def _read(name: str) -> str:
    return (DATA / name).read_text()


def test_parse_os_release() -> None:
    info = c.parse_os_release(_read("os-release.debian12.txt"))
    assert info["id"] == "debian" and info["version_id"] == "12"
    assert info["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    with pytest.raises(ValueError):
        c.parse_os_release("NAME=foo\n")


def test_parse_kernel_uptime_cpu_memory() -> None:
    k = c.parse_kernel(_read("uname.txt"))
    assert k["name"] == "Linux" and k["machine"] == "x86_64" and k["release"][0].isdigit()
    assert c.parse_uptime(_read("uptime.txt")) > 0
    cpu = c.parse_cpu(_read("cpu.txt"))
    assert cpu["cores"] >= 1 and cpu["load1"] >= 0 and cpu["model"]
    mem = c.parse_meminfo(_read("meminfo.txt"))
    assert 0 < mem["available"] <= mem["total"]
    assert mem["swap_free"] <= mem["swap_total"]


def test_parse_df() -> None:
    rows = c.parse_df(_read("df.txt"))
    root = next(r for r in rows if r["mount"] == "/")
    assert root["fstype"] == "ext4" and 0 <= root["use_pct"] <= 100
    assert root["used"] + root["avail"] <= root["size"]
    assert c.parse_df("Filesystem Type 1024-blocks Used Available Capacity Mounted on\n") == []


def test_parse_ss() -> None:
    rows = c.parse_ss(_read("ss.txt"))
    sshd = next(r for r in rows if r["process"] == "sshd")
    assert sshd == {
        "proto": "tcp",
        "address": "127.0.0.1",
        "port": 2299,
        "process": "sshd",
        "pid": sshd["pid"],
    }
    udp = next(r for r in rows if r["proto"] == "udp")
    assert udp["port"] == 5353 and udp["address"] == "*"
    v6 = next(r for r in rows if r["port"] == 8080)
    assert v6["address"] == "[::]"
    anon = next(r for r in rows if r["port"] == 2024)
    assert anon["process"] is None  # socket of another user's namespace: no process shown


def test_parse_failed_units_and_journal() -> None:
    units = c.parse_failed_units(_read("systemctl-failed.txt"))
    assert [u["unit"] for u in units] == ["nginx.service", "postfix@-.service"]
    assert units[0]["description"].startswith("A high performance web server")
    assert c.parse_failed_units("● ssh.service loaded failed failed OpenBSD Secure Shell server\n")[0][
        "unit"
    ] == ("ssh.service")
    assert c.parse_failed_units("") == []
    errs = c.parse_journal_json(_read("journal-errors.jsonl"))
    assert [e["unit"] for e in errs] == ["nginx.service", "kernel", "systemd-journald.service"]
    assert "Address already in use" in errs[0]["message"]
    assert errs[1]["message"].startswith("EXT4-fs error")  # byte-array message decoded
    assert errs[0]["ts"] == pytest.approx(1763894400.123456)


def test_parse_services() -> None:
    assert c.parse_services("nginx active enabled\npostfix failed enabled\njunk\n") == [
        {"unit": "nginx", "active": "active", "enabled": "enabled"},
        {"unit": "postfix", "active": "failed", "enabled": "enabled"},
    ]


@dataclass
class FakeResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ScriptedTarget:
    """A synchronous target (like a blocking SSH client) that answers from captured outputs."""

    name = "web1"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def run(self, command: str, timeout: float | None = None) -> FakeResult:
        self.calls.append((command, timeout))
        # Every collector runs in the C locale, whatever the target's own locale.
        assert command.startswith("export LC_ALL=C LANG=C; ")
        command = command.split("; ", 1)[1]
        if command.startswith("cat /etc/os-release"):
            return FakeResult(0, _read("os-release.debian12.txt").encode(), b"")
        if command.startswith("uname"):
            return FakeResult(0, _read("uname.txt").encode(), b"")
        if command.startswith("systemctl list-units"):
            return FakeResult(0, _read("systemctl-failed.txt").encode(), b"")
        if command.startswith("cat /proc/meminfo"):
            return FakeResult(0, b"garbage\n", b"")
        return FakeResult(127, b"", b"bash: thing: command not found\n")


async def test_collect_with_any_target_reports_failures() -> None:
    t = ScriptedTarget()
    f = await collect_facts(t, budget_s=2.0)
    assert f.target == "web1" and f.distro == "debian-12"
    assert [u["unit"] for u in f.failed_units or []] == ["nginx.service", "postfix@-.service"]
    assert f.memory is None and "unexpected output" in f.errors["memory"]
    assert f.ports is None and f.errors["ports"] == "bash: thing: command not found"
    assert all(timeout == 2.0 for _, timeout in t.calls) and len(t.calls) == len(COLLECTORS)
    text = f.as_prompt()
    assert "Debian GNU/Linux 12" in text and "nginx.service" in text and "Not collected:" in text


def _gone_within(pid: int, seconds: float) -> bool:
    """True once ``pid`` has exited (absent, or a zombie nobody reaped yet)."""
    import time

    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if stat.read_text().split(") ")[1].startswith("Z"):
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


async def test_budget_is_enforced_and_slow_commands_are_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    slow = Collector("slow", f"sleep 30 & echo $! > {pidfile}; wait", lambda s: s)
    fast = Collector("kernel", "uname -srm", c.parse_kernel)
    f = await collect_facts(LocalRunner(), budget_s=0.5, collectors=[slow, fast])
    assert f.kernel is not None and "timed out" in f.errors["slow"]
    # The whole process group went, including the backgrounded child.
    assert await asyncio.to_thread(_gone_within, int(pidfile.read_text()), 2.5)


async def test_fail_markers_turn_silent_output_into_an_error() -> None:
    col = Collector("journal_errors", "echo 'No journal files were found.' >&2", c.parse_journal_json,
                    fail_markers=("No journal files were found",))  # fmt: skip
    f = await collect_facts(LocalRunner(), budget_s=2.0, collectors=[col])
    assert f.journal_errors is None and "No journal files" in f.errors["journal_errors"]


async def test_local_runner() -> None:
    r = await LocalRunner().run("echo out; echo err >&2; exit 3", timeout=5)
    assert isinstance(r, ExecResult) and (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")


async def test_live_run_on_this_machine() -> None:
    f = await collect_facts(budget_s=5.0)
    assert f.os is not None and f.kernel is not None and f.cpu is not None and f.memory is not None
    assert f.uptime and f.uptime > 0 and f.disks is not None and f.ports is not None
    # systemd may be absent (containers): then the reason is reported, never an empty "healthy" list.
    assert (f.failed_units is not None) or ("failed_units" in f.errors)
    assert (f.journal_errors is not None) or ("journal_errors" in f.errors)
    assert len(f.as_prompt(max_chars=400)) <= 400
    again = Facts.model_validate_json(f.model_dump_json())
    assert again.distro == f.distro
    json.loads(f.model_dump_json())


def test_failed_units_skip_headers_legends_and_footers() -> None:
    # What systemctl prints when --no-legend/--plain are missing or ignored (and the ops bench's fake).
    out = (
        "  UNIT             LOAD   ACTIVE SUB    DESCRIPTION\n"
        "● nginx.service    loaded failed failed A high performance web server\n"
        "● postfix.service  loaded failed failed Postfix Mail Transport Agent\n\n"
        "LOAD   = Reflects whether the unit definition was properly loaded.\n"
        "ACTIVE = The high-level unit activation state, i.e. generalization of SUB.\n"
        "2 loaded units listed.\n"
    )
    assert [u["unit"] for u in c.parse_failed_units(out)] == ["nginx.service", "postfix.service"]
    assert c.parse_failed_units("cron.service loaded active running Regular background jobs\n") == []
