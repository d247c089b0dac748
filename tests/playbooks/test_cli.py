"""``fazai playbook check|test`` and ``fazai metrics`` through the real Typer app (in process: a
fresh interpreter per command costs tens of seconds on a loaded test machine)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from fazai.cli.main import _register, app
from fazai.store import Store
from fazai.telemetry import MetricStore
from opnsense_sim.eve import SSH_SCAN_ALERT

from .conftest import Netns


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def fazai(cfg: Path, *args: str) -> Ran:
    _register_once()
    runner = (
        CliRunner(mix_stderr=False)
        if "mix_stderr" in CliRunner.__init__.__code__.co_varnames
        else CliRunner()
    )
    r = runner.invoke(app, list(args), env={"FAZAI_CONFIG": str(cfg), "COLUMNS": "200"})
    return Ran(r.exit_code, r.stdout, r.stderr)


_registered: list[bool] = []


def _register_once() -> None:
    if not _registered:
        _register()
        _registered.append(True)


def config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "run"}"\n'
        f"[daemon]\nport = 42598\n[playbooks]\ndetect_local = false\n{extra}"
    )
    return cfg


def test_playbook_test_prints_the_plan_and_changes_nothing(tmp_path: Path, netns_ok) -> None:
    ns = Netns()
    try:
        cfg = config(tmp_path, f'[playbooks.nodes.web1]\nkind = "netns"\nnetns = "{ns.path}"\n')
        pb = tmp_path / "pb.yaml"
        pb.write_text(
            "name: ssh\ntrigger: {alert: {signature_id: 2001219}}\napprovals: {changes_state: approver}\n"
            "steps:\n  - nft_block: {nodes: [web1]}\n"
        )
        alert = tmp_path / "alert.json"
        alert.write_text(json.dumps(SSH_SCAN_ALERT))
        p = fazai(cfg, "playbook", "test", str(pb), "--alert", str(alert))
        assert p.returncode == 0, p.stderr
        assert "1. [nft_block1] nft_block: risk changes_state, needs approval by role 'approver'" in p.stdout
        assert "on web1: $ nft 'add table inet fazai; " in p.stdout and "198.51.100.23" in p.stdout
        assert ns.elements() == [] and "fazai" not in ns.nft("list", "tables").stdout
        p = fazai(cfg, "playbook", "test", str(pb), "--alert", str(alert), "--json")
        plan = json.loads(p.stdout)
        assert plan["matched"] is True and plan["steps"][0]["approval_role"] == "approver"
    finally:
        ns.close()


def test_playbook_check_reports_typos_with_lines(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrigger:\n  alert: {}\nsteps:\n  - webhook: {url: 'http://x', mesage: hi}\n")
    p = fazai(cfg, "playbook", "check", str(bad))
    assert p.returncode == 1
    assert f"{bad}:5: steps[0].webhook: unknown key 'mesage' (did you mean 'message'?)" in p.stderr


def test_metrics_shows_current_values_and_sparklines(tmp_path: Path) -> None:
    cfg = config(tmp_path)

    async def seed() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'state' / 'fazai.db'}")
        m = MetricStore(store.engine)
        import time

        now = time.time()
        for i in range(8):
            await m.record(
                "web1", {"disk_used_pct": 50.0 + i * 5, "mem_available_bytes": 2**30}, ts=now - 80 + i * 10
            )
        await store.close()

    asyncio.run(seed())
    p = fazai(cfg, "metrics", "web1", "--since", "10m")
    assert p.returncode == 0, p.stderr
    row = next(line for line in p.stdout.splitlines() if "disk_used_pct" in line)
    assert "85.0 %" in row and "50.0 %" in row and "▁▂▃▄▅▆▇█" in row
    assert "1.0 GiB" in p.stdout
    assert fazai(cfg, "metrics").stdout.split() == ["web1"]
    p = fazai(cfg, "metrics", "nosuch")
    assert p.returncode == 1 and "no samples of node 'nosuch'" in p.stderr


def test_playbook_test_with_metric_labels(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    pb = tmp_path / "journal.yaml"
    pb.write_text(
        "name: journal\ntrigger: {metric: {name: journal_errors, above: 20}}\nsteps:\n"
        "  - webhook: {url: 'http://127.0.0.1:9/hook', message: 'newest: {metric.labels.last1}'}\n"
    )
    p = fazai(cfg, "playbook", "test", str(pb), "--metric", "journal_errors=30", "--node", "web1",
              "--label", "last1=nginx.service: bind() failed")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "newest: nginx.service: bind() failed" in p.stdout
    # Without the label the what-if says the step would be refused, and why.
    p = fazai(cfg, "playbook", "test", str(pb), "--metric", "journal_errors=30", "--node", "web1")
    assert "REFUSED" in p.stdout and "{metric.labels.last1} names nothing" in p.stdout
