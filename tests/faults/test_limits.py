"""Bad input gets a clear 4xx (never a 500 or a cut stream) from a real fazaid; config errors name
their source; docs need the token; units agree on /run/fazai."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from daemon_harness import REPO, Daemon, action
from fazai.config import ConfigError, load_settings


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("limits")
    d = Daemon(home, [action(action="done", answer="ok")] * 3, "max_body_bytes = 200000").start(timeout=180)
    yield d
    d.stop()


def test_body_and_goal_limits(daemon: Daemon) -> None:
    with daemon.client() as c:
        big = c.post("/agent/sessions", json={"goal": "x" * 300_000})
        assert big.status_code == 413 and "max_body_bytes" in big.json()["detail"]
        long_goal = c.post("/agent/sessions", json={"goal": "y" * 30_000})
        assert long_goal.status_code == 413 and "max_goal_chars" in long_goal.json()["detail"]
        gen = c.post("/agent/generate", json={"goal": "y" * 30_000})
        assert gen.status_code == 413
        # A chunked body (no Content-Length) is counted as it arrives.
        chunked = c.post(
            "/agent/sessions",
            content=iter([b'{"goal": "', b"z" * 250_000, b'"}']),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413, chunked.text
        listed = c.get("/agent/sessions").json()
        assert all(len(r["goal"]) <= 20_000 for r in listed)


def test_ids_and_offsets_out_of_range_are_400s(daemon: Daemon) -> None:
    with daemon.client() as c:
        sid = c.post("/agent/sessions", json={"goal": "never run"}).json()["id"]
        huge = "9" * 5000
        r = c.post("/agent/reply", content=f'{{"session": "{sid}", "action": {huge}}}'.encode())
        assert 400 <= r.status_code < 500, r.text
        r = c.post("/agent/reply", json={"session": sid, "action": huge})
        assert 400 <= r.status_code < 500, r.text
        r = c.post("/agent/reply", json={"session": sid, "action": 2**70})
        assert 400 <= r.status_code < 500, r.text
        r = c.get(f"/agent/sessions/{sid}/events", params={"after": 2**63, "follow": "false"})
        assert r.status_code in (400, 422), r.text
        r = c.get(
            f"/agent/sessions/{sid}/events", params={"follow": "false"}, headers={"Last-Event-ID": str(2**63)}
        )
        assert r.status_code == 400 and "out of range" in r.json()["detail"]
        r = c.get(
            f"/agent/sessions/{sid}/events", params={"follow": "false"}, headers={"Last-Event-ID": huge}
        )
        assert r.status_code == 400


def test_created_session_is_not_running(daemon: Daemon) -> None:
    with daemon.client() as c:
        sid = c.post("/agent/sessions", json={"goal": "created only"}).json()["id"]
        row = c.get(f"/agent/sessions/{sid}").json()
        assert row["status"] == "created" and not row["live"]
        assert sid not in [r["id"] for r in c.get("/agent/sessions", params={"status": "running"}).json()]


def test_docs_and_schema_need_the_token(daemon: Daemon) -> None:
    with daemon.client(token=None) as anon:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert anon.get(path).status_code in (401, 404), path
    with daemon.client() as c:
        assert c.get("/openapi.json").json()["info"]["title"] == "fazaid"


def test_config_errors_name_their_source(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[agent]\nmax_iterations = 3 # \xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_settings(bad, environ={})
    good = tmp_path / "good.toml"
    good.write_text("[agent]\nmax_iterations = 3\n")
    with pytest.raises(ConfigError, match="from environment variable FAZAI_SAFETY__AUTO_APPROVE"):
        load_settings(good, environ={"FAZAI_SAFETY__AUTO_APPROVE": '["bogus"]'})


def test_systemd_units_agree_on_the_runtime_dir() -> None:
    modes = {}
    for unit in ("fazaid.service", "fazai-worker.service"):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.read(REPO / "deploy" / "systemd" / unit)
        svc = cp["Service"]
        modes[unit] = (
            svc.get("RuntimeDirectory"),
            svc.get("RuntimeDirectoryMode"),
            svc.get("RuntimeDirectoryPreserve"),
        )
    assert len(set(modes.values())) == 1, modes
