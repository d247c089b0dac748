"""``fazai opnsense …`` and ``fazai alerts tail`` end to end against the simulator over HTTP."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from fazai.cli.main import _register, app
from opnsense_sim.keys import KEY, SECRET, install_keys

_register()


@pytest.fixture
def cli(servers, tmp_path, monkeypatch):
    sim, url = servers["25.7"]
    sim.reset()
    install_keys(sim)
    monkeypatch.setenv("FAZAI_PATHS__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAZAI_CONFIG", str(tmp_path / "fazai.toml"))
    (tmp_path / "fazai.toml").write_text("")
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, code: int = 0):
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
        return r

    run("opnsense", "add", "fw1", url, env={"OPNSENSE_KEY": KEY, "OPNSENSE_SECRET": SECRET})
    return run, sim, tmp_path


def test_add_stores_secret_0600_and_never_prints_it(cli):
    run, _, tmp = cli
    secrets = tmp / "state" / "opnsense" / "secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert json.loads(secrets.read_text())["fw1"] == {"key": KEY, "secret": SECRET}
    r = run("opnsense", "list", "--json")
    assert [e["name"] for e in json.loads(r.stdout)] == ["fw1"]
    assert SECRET not in r.stdout and KEY not in r.stdout
    assert SECRET not in (tmp / "state" / "opnsense" / "firewalls.json").read_text()
    r = run("opnsense", "status")
    assert "OPNsense 25.7" in r.stdout


def test_add_from_apikey_file(cli, servers, tmp_path):
    run, _, tmp = cli
    _, url = servers["25.7"]
    f = tmp_path / "apikey.txt"
    f.write_text(f"key={KEY}\nsecret={SECRET}\n")
    run("opnsense", "add", "fw2", url, "--apikey-file", str(f))
    secrets = json.loads((tmp / "state" / "opnsense" / "secrets.json").read_text())
    assert secrets["fw2"] == {"key": KEY, "secret": SECRET}
    f.write_text("nothing here\n")
    r = run("opnsense", "add", "fw3", url, "--apikey-file", str(f), code=2)
    assert "key=" in r.stderr


def test_bad_key_is_reported(cli, servers):
    run, _, _ = cli
    _, url = servers["25.7"]
    r = run("opnsense", "add", "fw2", url, env={"OPNSENSE_KEY": "x", "OPNSENSE_SECRET": "y"}, code=1)
    assert "authentication failed" in r.stderr


def test_alias_rule_apply_block_flow(cli):
    run, sim, _ = cli
    r = run(
        "opnsense", "alias", "ensure", "bad_hosts", "-t", "host", "-c", "203.0.113.7", "--dry-run", "--json"
    )
    assert json.loads(r.stdout)["changes"][0]["action"] == "create" and sim.cols["alias"].items == {}
    run("opnsense", "alias", "ensure", "bad_hosts", "-t", "host", "-c", "203.0.113.7", "--apply")
    r = run("opnsense", "alias", "ensure", "bad_hosts", "-t", "host", "-c", "203.0.113.7", "--json")
    assert json.loads(r.stdout)["changed"] is False
    r = run(
        "opnsense",
        "rule",
        "ensure",
        "block bad ssh",
        "--action",
        "block",
        "-i",
        "wan",
        "-p",
        "TCP",
        "--source",
        "bad_hosts",
        "--dport",
        "22",
        "--apply",
    )
    assert "create rule block bad ssh" in r.stdout
    assert any(i["description"] == "block bad ssh" for i in sim.running["rule"].values())
    r = run("opnsense", "rule", "list", "--json")
    assert "block bad ssh" in r.stdout
    run("opnsense", "rule", "disable", "block bad ssh")
    r = run("opnsense", "apply", "--json")
    assert json.loads(r.stdout)["data"]["status"] == "applied"
    r = run("opnsense", "block", "198.51.100.23", "--reason", "ET SCAN", "--ttl", "2h")
    assert "add block 198.51.100.23" in r.stdout
    assert sim.pf_tables["fazai_block"] == {"198.51.100.23/32"}
    r = run("opnsense", "blocks", "--json")
    assert json.loads(r.stdout)[0]["reason"] == "ET SCAN"
    run("opnsense", "unblock", "198.51.100.23")
    assert sim.pf_tables["fazai_block"] == set()
    r = run("opnsense", "block", "127.0.0.1", "--reason", "x", code=1)
    assert "own API address" in r.stderr
    r = run("opnsense", "alias", "ensure", "9bad", "-c", "x y", code=1)
    assert "alias.name" in r.stderr


def test_backups_and_alerts(cli, tmp_path):
    run, sim, _ = cli
    run("opnsense", "backup", "pull")
    run("opnsense", "alias", "ensure", "web", "-t", "port", "-c", "443")
    run("opnsense", "backup", "pull", "--note", "after web")
    r = run("opnsense", "backup", "list", "--json")
    assert [b["note"] for b in json.loads(r.stdout)] == ["", "after web"]
    r = run("opnsense", "backup", "diff")
    assert "+" in r.stdout and "web" in r.stdout
    sim.add_eve(
        {
            "timestamp": "2025-03-01T10:15:02.123456+0000",
            "event_type": "alert",
            "src_ip": "198.51.100.23",
            "dest_ip": "192.0.2.10",
            "proto": "TCP",
            "alert": {
                "action": "allowed",
                "signature_id": 2001219,
                "signature": "ET SCAN Potential SSH Scan",
            },
        }
    )
    r = run("opnsense", "alerts")
    assert "ET SCAN Potential SSH Scan" in r.stdout
    r = run("alerts", "tail", "--firewall", "fw1", "--no-follow", "--json")
    assert json.loads(r.stdout.splitlines()[0])["signature_id"] == 2001219
    eve = tmp_path / "eve.json"
    eve.write_text(json.dumps(sim.eve[0]) + "\n")
    r = run("alerts", "tail", "--file", str(eve), "--from-start", "--no-follow")
    assert "sid 2001219" in r.stdout
    run("alerts", "tail", code=2)


def test_never_block_setting_journal_and_undo(cli):
    run, sim, tmp = cli
    (tmp / "fazai.toml").write_text('[opnsense]\nnever_block = ["198.51.100.0/28"]\n')
    r = run("opnsense", "block", "198.51.100.0/24", "--reason", "too wide for the list", code=1)
    assert "never-block list" in r.stderr
    run("opnsense", "block", "203.0.113.66", "--reason", "scanner")
    rows = json.loads(run("opnsense", "journal", "--json").stdout)
    assert [(i["action"], i["target"], i["undo"]) for i in rows] == [
        ("block", "203.0.113.66", "fazai opnsense unblock 203.0.113.66")
    ]
    run("opnsense", "undo")
    assert sim.pf_tables["fazai_block"] == set()
    assert json.loads(run("opnsense", "journal", "--json").stdout)[0]["undone"]
    r = run("opnsense", "undo", code=1)
    assert "nothing to undo" in r.stderr
