"""End to end over HTTP/SSE against a real ``fazaid`` process with the scripted provider."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from daemon_harness import REPO, Daemon, action, find_procs, run_stream, sse_messages, wait_for


@pytest.fixture
def daemons(tmp_path: Path):
    started: list[Daemon] = []

    def make(script: list[str], extra: str = "", home: Path | None = None) -> Daemon:
        d = Daemon(home or tmp_path / f"d{len(started)}", script, extra).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events]


def test_every_action_kind_with_ask_and_approval(daemons, tmp_path: Path) -> None:
    marker = tmp_path / "made-by-agent"
    d = daemons(
        [
            action(action="plan", steps=["ask", "look", "change", "finish"]),
            action(action="ask", question="which greeting?", options=["hi", "hello"], default="hi"),
            action(action="shell", command="echo out-line; echo err-line >&2"),
            action(action="shell", command=f"touch {marker}"),
            action(action="observe", summary="greeted and touched"),
            action(action="done", answer="finished", status="success"),
        ]
    )
    with d.client() as c, c.stream("POST", "/agent/generate", json={"goal": "greet"}) as r:
        assert r.status_code == 200
        sid = r.headers["X-Session-Id"]
        events, end = run_stream(c, r, approve=True, answer="hello")
    assert end == {"event": "end", "session": sid, "status": "done", "last_seq": events[-1]["seq"]}
    ks = kinds(events)
    for k in (
        "context",
        "token",
        "action",
        "plan",
        "ask",
        "reply",
        "exec_log",
        "exec_end",
        "observe",
        "done",
    ):
        assert k in ks, k
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    acts = [e["data"]["kind"] for e in events if e["kind"] == "action"]
    assert acts == ["plan", "ask", "shell", "shell", "observe", "done"]
    logs = {(e["data"]["stream"], e["data"]["text"].strip()) for e in events if e["kind"] == "exec_log"}
    assert ("stdout", "out-line") in logs and ("stderr", "err-line") in logs
    assert any(e["kind"] == "reply" and e["data"].get("answer") == "hello" for e in events)
    assert "approval_required" in ks  # `touch` changes state: the operator approved it
    assert marker.exists()
    # Tokens replay to exactly what the model said.
    said = "".join(e["data"]["text"] for e in events if e["kind"] == "token" and e["data"]["iteration"] == 1)
    assert said == action(action="plan", steps=["ask", "look", "change", "finish"])
    with d.client() as c:
        s = c.get(f"/agent/sessions/{sid}").json()
        assert (s["status"], s["summary"], s["live"], s["last_seq"]) == (
            "done",
            "finished",
            False,
            len(events),
        )
        assert [x["id"] for x in c.get("/agent/sessions").json()] == [sid]
        m = c.get("/metrics").text
        assert "fazai_iterations_total 6.0" in m
        assert 'fazai_actions_total{kind="shell",outcome="ok"} 2.0' in m
        assert 'fazai_sessions_total{status="done"} 1.0' in m
        assert "fazai_time_to_first_token_seconds_count" in m
        # Replay of the stored log equals the live stream.
        with c.stream("GET", f"/agent/sessions/{sid}/events") as r:
            replay = [data for name, data, _ in sse_messages(r) if name == "message"]
        assert replay == events


def test_denied_approval_does_not_run(daemons, tmp_path: Path) -> None:
    never = tmp_path / "never"
    d = daemons(
        [
            action(action="shell", command=f"touch {never}"),
            action(action="done", answer="gave up", status="blocked"),
        ]
    )
    with d.client() as c, c.stream("POST", "/agent/generate", json={"goal": "touch it"}) as r:
        events, end = run_stream(c, r, approve=False)
    assert "approval_required" in kinds(events)
    assert any(e["kind"] == "reply" and e["data"]["approved"] is False for e in events)
    assert "exec_log" not in kinds(events) and not never.exists()
    denied = [e for e in events if e["kind"] == "observe" and e["data"].get("status") == "denied"]
    assert denied and end and end["status"] == "failed"
    with d.client() as c:
        # A reply nobody waits for is a clear 409, not a crash.
        r = c.post("/agent/reply", json={"session": events[0]["session"], "action": 1, "approved": True})
        assert r.status_code == 409 and "not running" in r.json()["detail"]


def test_abort_kills_long_sleep_fast_and_session_continues(daemons) -> None:
    d = daemons(
        [
            action(action="shell", command="sleep 31.4159"),
            action(action="done", answer="continued after abort", status="success"),
        ]
    )
    holder: dict = {}

    def on_event(ev: dict) -> None:
        if ev["kind"] == "action" and ev["data"]["kind"] == "shell":
            holder["sid"] = ev["session"]

    with d.client() as c, c.stream("POST", "/agent/generate", json={"goal": "wait"}) as r:
        sid = r.headers["X-Session-Id"]

        def abort_when_running() -> None:
            wait_for(lambda: find_procs("sleep 31.4159"))
            holder["t0"] = time.monotonic()
            with d.client() as c2:
                assert c2.post("/agent/abort", json={"session": sid}).json()["aborted"] is True

        t = threading.Thread(target=abort_when_running)
        t.start()
        events, end = run_stream(c, r, on_event=on_event)
        elapsed = time.monotonic() - holder["t0"]
        t.join()
    assert end and end["status"] == "aborted"
    assert events[-1]["kind"] == "aborted"
    assert elapsed < 1.0, f"abort took {elapsed:.2f}s"
    assert find_procs("sleep 31.4159") == []
    exec_end = next(e for e in events if e["kind"] == "exec_end")
    assert exec_end["data"]["cancelled"] is True
    # The session is persistent: a new goal continues it with its history.
    with d.client() as c:
        assert c.get(f"/agent/sessions/{sid}").json()["status"] == "aborted"
        with c.stream("POST", "/agent/generate", json={"session": sid, "goal": "go on"}) as r:
            more, end2 = run_stream(c, r)
    assert end2 and end2["status"] == "done"
    assert more[0]["seq"] == events[-1]["seq"] + 1
    ctx = [e for e in more if e["kind"] == "context"]
    assert ctx and ctx[0]["data"]["goal"] == "go on"


def test_sse_resume_with_last_event_id(daemons) -> None:
    d = daemons(
        [
            action(action="shell", command="for i in 1 2 3 4 5; do echo line$i; sleep 0.05; done"),
            action(action="done", answer="ok", status="success"),
        ]
    )
    with d.client() as c:
        with c.stream("POST", "/agent/generate", json={"goal": "lines"}) as r:
            sid = r.headers["X-Session-Id"]
            first: list[dict] = []
            for name, data, ident in sse_messages(r):
                assert name == "message" and ident == str(data["seq"])
                first.append(data)
                if len(first) == 7:
                    break  # the client goes away mid-run
        headers = {"Last-Event-ID": str(first[-1]["seq"])}
        with c.stream("GET", f"/agent/sessions/{sid}/events", headers=headers) as r:
            rest, end = run_stream(c, r)
        assert end and end["status"] == "done"
        assert rest[0]["seq"] == 8
        assert [e["seq"] for e in first + rest] == list(range(1, rest[-1]["seq"] + 1))
        # Exactly what was missed, also after the end, and nothing for an up-to-date client.
        with c.stream("GET", f"/agent/sessions/{sid}/events", headers={"Last-Event-ID": "10"}) as r:
            tail = [data["seq"] for name, data, _ in sse_messages(r) if name == "message"]
        assert tail == list(range(11, rest[-1]["seq"] + 1))
        with c.stream("GET", f"/agent/sessions/{sid}/events", params={"after": rest[-1]["seq"]}) as r:
            assert [n for n, _, _ in sse_messages(r)] == ["end"]


def test_kill9_then_restart_and_resume(daemons, tmp_path: Path) -> None:
    home = tmp_path / "kill"
    a = daemons([action(action="shell", command="echo started; sleep 27.1828")], home=home)
    with a.client() as c, c.stream("POST", "/agent/generate", json={"goal": "long job"}) as r:
        sid = r.headers["X-Session-Id"]
        seen: list[dict] = []
        for _name, data, _ in sse_messages(r):
            seen.append(data)
            if data["kind"] == "approval_required":
                c.post(
                    "/agent/reply", json={"session": sid, "action": data["data"]["action"], "approved": True}
                )
            if data["kind"] == "exec_log":
                break
        a.kill9()
    try:
        b = daemons([action(action="done", answer="resumed fine", status="success")], home=home)
        with b.client() as c:
            s = c.get(f"/agent/sessions/{sid}").json()
            assert s["status"] == "interrupted"
            stored = [
                data for n, data, _ in sse_messages(c.get(f"/agent/sessions/{sid}/events")) if n == "message"
            ]
            # The log is intact up to the last event the client saw (and maybe a little more).
            assert stored[: len(seen)] == seen
            assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
            with c.stream("POST", "/agent/generate", json={"session": sid}) as r:
                events, end = run_stream(c, r)
        assert end and end["status"] == "done"
        assert events[0]["seq"] == stored[-1]["seq"] + 1
        interrupted = [
            e for e in events if e["kind"] == "observe" and e["data"].get("status") == "interrupted"
        ]
        assert interrupted, kinds(events)
        assert events[-1]["kind"] == "done" and events[-1]["data"]["answer"] == "resumed fine"
    finally:
        for pid in find_procs("sleep 27.1828"):
            os.kill(pid, signal.SIGKILL)


def test_slow_client_is_dropped_and_never_stalls_the_loop(daemons) -> None:
    d = daemons(
        [
            action(action="shell", command="sleep 0.3; head -c 12000000 /dev/zero | tr '\\0' x"),
            action(action="done", answer="big output done", status="success"),
        ],
        extra="sse_queue_size = 10\nsse_send_timeout_s = 120",
    )
    result: dict = {}

    def driver() -> None:
        # A well-behaved client that drives the run (approving if the policy asks) and resumes on lag.
        with d.client() as c, c.stream("POST", "/agent/generate", json={"goal": "flood"}) as r:
            result["sid"] = r.headers["X-Session-Id"]
            events, end = run_stream(c, r)
            while end and end["event"] == "lagged":
                with c.stream(
                    "GET", f"/agent/sessions/{result['sid']}/events", params={"after": end["last_seq"]}
                ) as r2:
                    more, end = run_stream(c, r2)
                events += more
            result["events"], result["end"] = events, end

    t = threading.Thread(target=driver)
    t.start()
    sid = wait_for(lambda: result.get("sid"))
    # The slow client: a tiny receive buffer, and it reads nothing until the run is over.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", d.port))
    slow.sendall(
        f"GET /agent/sessions/{sid}/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {d.token}\r\n\r\n".encode()
    )
    t.join(120)
    assert not t.is_alive()
    assert result["end"]["status"] == "done"
    with d.client() as c:
        assert c.get(f"/agent/sessions/{sid}").json()["status"] == "done"
    # Now the slow client reads: what it got ends with the lag notice, then the server closed.
    slow.settimeout(30)
    buf = b""
    while chunk := slow.recv(1 << 20):
        buf += chunk
    slow.close()
    text = buf.decode(errors="replace")
    assert "event: lagged" in text
    # The lag notice is the last message (nothing with an id after it), then the stream ends.
    assert text.count("event: lagged") == 1 and text.rindex("event: lagged") > text.rindex("\r\nid: ")
    assert text.endswith("0\r\n\r\n")
    lag = json.loads(text.split("event: lagged", 1)[1].split("data: ", 1)[1].split("\r\n", 1)[0])
    assert lag["last_seq"] < result["events"][-1]["seq"]
    with d.client() as c:
        # The slow client at least (the driver may have lagged too, and resumed).
        lagged = re.search(r"^fazai_sse_lagged_total (\S+)$", c.get("/metrics").text, re.M)
        assert lagged and float(lagged.group(1)) >= 1


def test_token_auth_and_bind_refusal(daemons, tmp_path: Path) -> None:
    d = daemons([action(action="done", answer="x")])
    token_file = d.home / "state" / "daemon.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    with d.client(token=None) as c:
        assert c.get("/healthz").json()["ok"] is True
        r = c.get("/agent/sessions")
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert c.post("/agent/generate", json={"goal": "x"}).status_code == 401
    with d.client(token="wrong") as c:
        assert c.get("/metrics").status_code == 401
    with d.client() as c:
        assert c.get("/agent/sessions").status_code == 200
        r = c.post("/agent/generate", json={"session": "s_nope"})
        assert r.status_code == 404 and "fazai sessions" in r.json()["detail"]
    cfg = tmp_path / "open.toml"
    cfg.write_text(
        f'[paths]\nstate_dir = "{tmp_path}/o"\n[daemon]\nhost = "0.0.0.0"\nrequire_token = false\n'
    )
    p = subprocess.run(
        [sys.executable, "-m", "fazai.server", "--port", "0"],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert p.returncode != 0 and "refusing to listen on 0.0.0.0 without a token" in p.stderr


def _fazai(cfg: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fazai.cli.main", *args],
        env={**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def test_cli_through_daemon_then_replay(daemons, tmp_path: Path) -> None:
    d = daemons(
        [
            action(action="plan", steps=["answer"]),
            action(action="done", answer="the answer", status="success"),
        ]
    )
    # The CLI finds the daemon at the configured port.
    cfg = tmp_path / "cli.toml"
    cfg.write_text(d.config.read_text().replace("port = 3120", f"port = {d.port}"))
    # A task, not a question: the answer gate has no value to check in "the answer".
    p = _fazai(cfg, "agent", "--daemon", "--json", "--yes", "say the answer")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert lines[-1]["summary"]["status"] == "success" and lines[-1]["summary"]["iterations"] == 2
    sid = lines[0]["session"]
    assert [x["seq"] for x in lines[:-1]] == list(range(1, len(lines)))
    # The daemon logged the run as JSON with the session id.
    assert any(f'"session": "{sid}"' in ln and "run_finished" in ln for ln in d.lines)
    with d.client() as c:
        stored = [
            data for n, data, _ in sse_messages(c.get(f"/agent/sessions/{sid}/events")) if n == "message"
        ]
    assert stored == lines[:-1]
    shown = _fazai(cfg, "replay", sid)
    assert "the answer" in shown.stdout and "1. answer" in shown.stdout and "2 iterations" in shown.stdout


def test_cli_embedded_without_daemon(tmp_path: Path) -> None:
    from daemon_harness import write_config

    with socket.socket() as s:  # a port where no daemon listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(
        tmp_path / "emb",
        [action(action="shell", command="echo embedded-run"), action(action="done", answer="emb ok")],
        port=port,
    )
    p = _fazai(cfg, "agent", "--json", "say hi")
    assert p.returncode == 0, p.stderr
    evs = [json.loads(x) for x in p.stdout.splitlines()]
    assert evs[-1]["summary"]["status"] == "success"
    sid = evs[0]["session"]
    # Non-interactive stdin: approvals (if the policy asks) are denied, never silently granted.
    if any(e.get("kind") == "approval_required" for e in evs[:-1]):
        assert not any(e.get("kind") == "exec_log" for e in evs[:-1])
    else:
        assert any(e.get("kind") == "exec_log" and "embedded-run" in e["data"]["text"] for e in evs[:-1])
    listed = _fazai(cfg, "sessions")
    assert sid in listed.stdout and "done" in listed.stdout
    bad = _fazai(cfg, "replay", "s_missing")
    assert bad.returncode == 3 and "no session s_missing" in bad.stderr
    assert httpx  # the module is used by the harness


def test_ctrl_c_aborts_the_running_command_and_the_session_stays_resumable(tmp_path: Path) -> None:
    from daemon_harness import write_config

    with socket.socket() as s:  # a port where no daemon listens: the CLI runs embedded
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    marker = f"fazai-ctrlc-{os.getpid()}"
    cfg = write_config(
        tmp_path / "cc",
        [action(action="shell", command=f"sleep 30; echo {marker}"), action(action="done", answer="after")],
        port=port,
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "fazai.cli.main", "agent", "--json", "wait a while"],
        env={**os.environ, "FAZAI_CONFIG": str(cfg)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        wait_for(lambda: find_procs(marker), timeout=30)
        p.send_signal(signal.SIGINT)  # first Ctrl-C: abort the running command
        wait_for(lambda: not find_procs(marker), timeout=5)
        out, errs = p.communicate(timeout=30)
    finally:
        p.kill()
    evs = [json.loads(x) for x in out.splitlines()]
    assert any(e.get("kind") == "aborted" for e in evs[:-1]), errs
    assert evs[-1]["summary"]["status"] == "aborted" and p.returncode == 130
    sid = evs[-1]["summary"]["session"]
    # The session is kept and continues. A new process starts the script over: it gets only the
    # model's next turn (else the resumed run would sleep 30 s again).
    write_config(tmp_path / "cc", [action(action="done", answer="after")], port=port)
    resumed = _fazai(cfg, "agent", "--json", "--resume", sid)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["summary"]["status"] == "success"
