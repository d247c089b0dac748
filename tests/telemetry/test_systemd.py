"""Service-state and journal-error telemetry: parsers on output captured from Debian 12's systemd 252
(tests/data/systemd/README.md), the sampler on this machine as it is, and against a real systemd user
manager and journald (tests/systemd_user.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from fazai.node.settings import AgentSettings
from fazai.telemetry.systemd import (
    LINE_CHARS,
    ServiceSource,
    parse_failed,
    parse_journal,
    parse_units,
    unit_key,
)
from systemd_user import user_systemd  # noqa: F401  (fixture)

DATA = Path(__file__).resolve().parents[1] / "data" / "systemd"


def _data(name: str) -> str:
    return (DATA / name).read_text()


def test_units_parsed_in_argument_order() -> None:
    units = parse_units(_data("show_units.txt"))
    assert [u.id for u in units] == [
        "fz-web.service",
        "fz-broken.service",
        "fz-flap.service",
        "nginx.service",
    ]
    web, broken, flap, nginx = units
    assert web.is_active and (web.active, web.sub, web.restarts) == ("active", "running", 0)
    assert not broken.is_active and (broken.active, broken.sub) == ("failed", "failed")
    assert not flap.is_active and (flap.active, flap.sub, flap.restarts) == ("activating", "auto-restart", 30)
    assert nginx.load == "not-found" and not nginx.is_active and nginx.restarts == 0
    later = parse_units(_data("show_units_later.txt"))
    assert later[2].restarts == 33  # the flapping unit, ~2 s later
    (between,) = parse_units(_data("show_unit_auto_restart.txt"))
    assert (between.active, between.sub, between.restarts) == ("activating", "auto-restart", 41)


def test_failed_count_of_the_manager() -> None:
    assert parse_failed(_data("show_manager_degraded.txt")) == 1
    assert parse_failed(_data("show_manager_running.txt")) == 0
    assert parse_failed(_data("no_systemd_stderr.txt")) is None  # what a container prints: no count
    assert parse_failed("") is None and parse_failed("NFailedUnits=many\n") is None


def test_journal_errors_after_a_mark() -> None:
    lines = _data("journal_err_reverse.json").splitlines()
    stamps = sorted(int(json.loads(x)["__REALTIME_TIMESTAMP"]) for x in lines)
    everything = parse_journal(lines, 0)
    assert everything.count == len(lines) == 35 and everything.newest_us == stamps[-1]
    assert everything.lines[0] == "fz-flap.service: fz-flap: bind 127.0.0.1:8080: Address already in use"
    assert len(everything.lines) == 5
    # Only entries strictly after the mark count: the previous sample counted the mark's own entry.
    newer = parse_journal(lines, stamps[-4])
    assert newer.count == 3 and newer.newest_us == stamps[-1]
    assert parse_journal(lines, stamps[-1]).count == 0
    # A read killed mid-line leaves a torn last line: skipped, the rest counted.
    assert parse_journal([*lines[:3], lines[3][:40]], 0).count == 3


def test_journal_binary_and_long_messages() -> None:
    got = parse_journal(_data("journal_err_binary.json").splitlines(), 0)
    assert got.count == 2  # err and crit; the info line is below -p err
    assert "fz-bin.service: fz-bin: critical: disk on fire" in got.lines
    assert "fz-bin.service: fz-bin: bad byte \ufffd in name" in got.lines  # non-UTF-8 byte replaced
    entry = {"__REALTIME_TIMESTAMP": "5", "MESSAGE": "x" * 5000 + "\nsecond line", "SYSLOG_IDENTIFIER": "k"}
    (line,) = parse_journal([json.dumps(entry)], 0).lines
    assert len(line) == LINE_CHARS and "\n" not in line and line.startswith("k: xxx")


def _fake_systemctl(tmp_path: Path, *unit_outputs: str) -> list[str]:
    """A stand-in ``systemctl`` printing captured output: the manager's for ``show -p NFailedUnits``,
    else the next of ``unit_outputs`` (the last one repeats). It records its environment."""
    for i, text in enumerate(unit_outputs):
        (tmp_path / f"units{i}.txt").write_text(text)
    (tmp_path / "manager.txt").write_text(_data("show_manager_degraded.txt"))
    script = tmp_path / "systemctl"
    script.write_text(
        f"""#!/bin/bash
env > {tmp_path}/env.txt
case "$*" in *NFailedUnits*) exec cat {tmp_path}/manager.txt;; esac
n=$(cat {tmp_path}/n 2>/dev/null || echo 0)
f={tmp_path}/units$n.txt
[ -e "$f" ] || f={tmp_path}/units{len(unit_outputs) - 1}.txt
echo $((n + 1)) > {tmp_path}/n
cat "$f"
"""
    )
    script.chmod(0o755)
    return [str(script)]


async def test_restarts_are_counted_between_samples(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAZAI_DAEMON_TOKEN", "must-not-leak")
    fake = _fake_systemctl(tmp_path, _data("show_units.txt"), _data("show_units_later.txt"))
    src = ServiceSource(
        ["fz-web", "fz-broken.service", "fz-flap", "nginx"], systemctl=fake, journalctl=["false"]
    )
    first = await src.sample()
    assert first.values["unit_restarts:fz-flap"] == 0  # first sight: no interval yet
    second = await src.sample()
    assert second.values == {
        "units_failed": 1.0,
        "unit_active:fz-web": 1.0,
        "unit_restarts:fz-web": 0.0,
        "unit_active:fz-broken": 0.0,  # named as written, without ".service"
        "unit_restarts:fz-broken": 0.0,
        "unit_active:fz-flap": 1.0,  # running again by then
        "unit_restarts:fz-flap": 3.0,  # 33 - 30
        "unit_active:nginx": 0.0,
        "unit_restarts:nginx": 0.0,
    }  # no journal_errors: journalctl failed (here: `false`), so the metric is left out
    env = (tmp_path / "env.txt").read_text()
    assert "must-not-leak" not in env and "SYSTEMD_PAGER=" in env  # the scrubbed, quiet environment


async def test_a_hung_systemctl_is_cut_off(tmp_path: Path) -> None:
    src = ServiceSource(["ssh"], systemctl=["sleep", "30"], journalctl=["sleep", "30"], timeout_s=0.5)
    t0 = time.monotonic()
    got = await src.sample()
    assert time.monotonic() - t0 < 1.5
    assert got.values == {} and got.labels == {}


def _pid1() -> str:
    return Path("/proc/1/comm").read_text().strip()  # what `ps -p 1 -o comm=` prints


async def test_the_sampler_on_this_machine_as_it_is() -> None:
    pid1 = _pid1()
    src = ServiceSource(["ssh", "cron"])
    t0 = time.monotonic()
    await src.sample()
    got = await src.sample()
    assert time.monotonic() - t0 < 2.0  # two samples, each bounded by the 0.8 s command timeout
    if pid1 == "systemd":
        assert "units_failed" in got.values and "unit_active:ssh" in got.values
    else:  # a container: systemctl cannot reach a manager, and those metrics are left out quietly
        assert not any(k.startswith(("units_failed", "unit_")) for k in got.values), got.values
    assert set(got.values) <= {
        "units_failed",
        "journal_errors",
        *(f"unit_{k}:{u}" for k in ("active", "restarts") for u in ("ssh", "cron")),
    }


def test_unit_names_are_checked() -> None:
    assert unit_key("nginx.service") == "nginx" and unit_key("backup.timer") == "backup.timer"
    with pytest.raises(ValueError, match="not a systemd unit name"):
        ServiceSource(["ok", "bad name; rm -rf /"])
    with pytest.raises(ValueError, match="not a systemd unit name"):
        AgentSettings(watch_units=["$(reboot)"])
    assert AgentSettings(watch_units=["getty@tty1", "nginx.service"]).watch_units[0] == "getty@tty1"


async def test_against_a_real_systemd_and_journald(user_systemd) -> None:  # noqa: F811
    sd = user_systemd
    src = ServiceSource(["fz-web", "fz-flap", "nginx"], systemctl=sd.systemctl, journalctl=sd.journalctl)
    sd.run_unit("fz-web", "sleep 600")
    sd.run_unit("fz-flap", "echo '<3>fz-flap: bind: Address already in use' >&2; sleep 0.2; exit 1",
                "Restart=always", "RestartSec=200ms", "StartLimitIntervalSec=0")  # fmt: skip
    first = await src.sample()
    assert first.values["units_failed"] == 0 and first.values["unit_active:fz-web"] == 1
    sd.run_unit("fz-broken", "echo '<3>fz-broken: no config' >&2; exit 2")
    await asyncio.sleep(2.0)
    t0 = time.monotonic()
    got = await src.sample()
    assert time.monotonic() - t0 < 1.0
    failed = sd.ctl("list-units", "--state=failed", "--no-legend", "--plain").stdout.splitlines()
    assert [line.split()[0] for line in failed] == ["fz-broken.service"]
    assert got.values["units_failed"] == 1.0
    assert got.values["unit_active:fz-web"] == 1.0 and got.values["unit_active:nginx"] == 0.0
    assert got.values["unit_restarts:fz-flap"] >= 3  # restarted every ~0.4 s for 2 s
    # Each fz-flap restart starts a process that logs one err line, and fz-broken logged one; the
    # newest restart's line may still be on its way (NRestarts counts before the process runs).
    assert got.values["journal_errors"] >= got.values["unit_restarts:fz-flap"]
    last = got.labels["journal_errors"]
    assert list(last) == [f"last{i}" for i in range(1, min(5, int(got.values["journal_errors"])) + 1)]
    assert all("fz-flap: bind" in m or "fz-broken: no config" in m for m in last.values()), last
    again = await src.sample()
    assert again.values["journal_errors"] <= 3 and again.values["unit_restarts:fz-flap"] <= 3  # only new ones


def _err_stamps(journalctl: list[str]) -> list[int]:
    """``__REALTIME_TIMESTAMP`` of every err-or-worse entry of the journal, read independently."""
    argv = [*journalctl, "-p", "err", "-q", "-o", "json", "--no-pager"]
    dump = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.splitlines()
    return [int(json.loads(x)["__REALTIME_TIMESTAMP"]) for x in dump]


async def test_journal_errors_are_counted_once_across_samples(user_systemd) -> None:  # noqa: F811
    sd = user_systemd
    src = ServiceSource([], systemctl=sd.systemctl, journalctl=sd.journalctl)
    await src.sample()
    start_mark = src._mark_us
    sd.run_unit("fz-noisy", 'for i in $(seq 60); do echo "<3>fz-noisy: error $i" >&2; sleep 0.02; done')
    counted = 0
    for _ in range(8):  # samples taken while the unit is still writing
        await asyncio.sleep(0.25)
        counted += int((await src.sample()).values["journal_errors"])
    # The truth: every err entry the journal holds after the first sample's mark, up to the last one's.
    stamps = _err_stamps(sd.journalctl)
    truth = sum(1 for ts in stamps if start_mark < ts <= src._mark_us)
    assert counted == truth and truth >= 30, (counted, truth)
