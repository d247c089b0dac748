"""Two real fazaid replicas on one PostgreSQL and one NATS JetStream.

A session runs on replica A; an SSE client follows it from replica B. B is killed (-9) mid-stream and
restarted, the client resumes with Last-Event-ID, then NATS itself is killed and restarted mid-run:
the client gets every event of the session exactly once, in order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import REPO, Daemon, action, find_procs, run_stream, sse_messages, wait_for
from services import Nats, create_database, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # real processes: ~20-40 s on 2 busy cores

MARK = "fazai-scale-test"


@pytest.fixture
def store_url(pg_url: str, tmp_path: Path) -> str:
    """A fresh database, migrated with the command a replica's refusal names."""
    url = create_database(pg_url, "scale_" + str(os.getpid()))
    out = subprocess.run(
        [sys.executable, "-m", "fazai.cli.main", "store", "migrate", "--store", url],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "FAZAI_CONFIG": str(tmp_path / "none.toml")},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "schema at" in out.stdout
    return url


@pytest.fixture
def replicas(store_url: str, nats_server: Nats, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(name: str, script: list[str]) -> Daemon:
        extra = f'database_url = "{store_url}"\nreplica_id = "{name}"\n'
        extra += f'[bus]\nurl = "{nats_server.url}"\nretry_max_s = 0.5\n'
        d = Daemon(tmp_path / name, script, extra, port=free_port()).start(timeout=90)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()
    for pid in find_procs(MARK):
        os.kill(pid, 9)


def _gate(tmp_path: Path, name: str) -> str:
    # The command on A waits for these files: the test decides when each phase may start.
    return f"while [ ! -e {tmp_path / name} ]; do sleep 0.05; done"


def _lines(a: int, b: int) -> str:
    return f"for i in $(seq {a} {b}); do echo {MARK}-line$i; sleep 0.02; done"


def test_follow_from_another_replica_across_its_kill9_and_a_nats_restart(
    replicas: Callable[..., Daemon], nats_server: Nats, tmp_path: Path
) -> None:
    cmd = "; ".join(
        [
            _lines(1, 20),
            _gate(tmp_path, "go1"),
            _lines(21, 40),
            _gate(tmp_path, "go2"),
            _lines(41, 60),
            _gate(tmp_path, "go3"),
            _lines(61, 80),
        ]
    )
    flag = tmp_path / "approved-on-b"
    a = replicas(
        "a",
        [
            action(action="shell", command=cmd),
            action(action="done", answer="ok", status="success"),
            action(action="shell", command=f"touch {flag}"),
            action(action="done", answer="ok", status="success"),
        ],
    )
    b = replicas("b", ["unused"])

    # Replica A runs the session; its own client answers approvals and reads to the end.
    on_a: dict[str, Any] = {}
    sid_known = threading.Event()

    def run_on_a() -> None:
        with a.client() as c, c.stream("POST", "/agent/generate", json={"goal": "print the test lines"}) as r:
            on_a["sid"] = r.headers["X-Session-Id"]
            sid_known.set()
            on_a["events"], on_a["end"] = run_stream(c, r)

    t = threading.Thread(target=run_on_a, daemon=True)
    t.start()
    assert sid_known.wait(60)
    sid = on_a["sid"]

    def output(events: list[dict[str, Any]]) -> str:
        return "".join(e["data"].get("text", "") for e in events if e["kind"] == "exec_log")

    # Phase 1 streamed from B, which is then killed mid-stream.
    seen: list[dict[str, Any]] = []
    with b.client() as c, c.stream("GET", f"/agent/sessions/{sid}/events") as r:
        for name, data, ident in sse_messages(r):
            assert name == "message" and ident == str(data["seq"]), (
                name,
                data,
                [(e["kind"], e["data"]) for e in seen[-4:]],
            )
            seen.append(data)
            if f"{MARK}-line20\n" in output(seen):
                break
        b.kill9()
    b.start(timeout=90)  # same home, same port, same replica name
    assert wait_for(lambda: b.client().get("/healthz").json().get("bus", {}).get("connected"), 30)
    # A's run survived B's restart (B marks only its own leftovers interrupted).
    with a.client() as c:
        assert c.get(f"/agent/sessions/{sid}").json()["status"] == "running"
    # …and B will not start a second run of it.
    with b.client() as c:
        twice = c.post("/agent/generate", json={"session": sid})
        assert twice.status_code == 409 and "running on replica a" in twice.json()["detail"]

    # Resume from B with Last-Event-ID; phases 2-4 flow while the client follows.
    gates = {20: "go1", 40: "go2", 60: "go3"}
    with b.client() as c:
        headers = {"Last-Event-ID": str(seen[-1]["seq"])}
        with c.stream("GET", f"/agent/sessions/{sid}/events", headers=headers) as r:
            (tmp_path / "go1").touch()
            for name, data, _ in sse_messages(r):
                if name != "message":
                    end = {"event": name, **data}
                    break
                seen.append(data)
                text = output(seen)
                if f"{MARK}-line40\n" in text and gates.get(40):
                    gates.pop(40)
                    nats_server.stop()  # kill -9 mid-run: A queues, B falls back to the store
                    (tmp_path / "go2").touch()
                if f"{MARK}-line60\n" in text and gates.get(60):
                    gates.pop(60)
                    nats_server.start()  # same store dir: the stream is still there
                    (tmp_path / "go3").touch()
            else:
                raise AssertionError("the stream ended without an end marker")
        health = c.get("/healthz").json()
    t.join(60)
    assert end["event"] == "end" and end["status"] == "done", (
        end,
        [(e["kind"], e["data"]) for e in seen[-4:]],
    )
    seqs = [e["seq"] for e in seen]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a duplicate"
    # Exactly the session's log, as A stored it and as A's own client saw it.
    with a.client() as c:
        stored = [d for n, d, _ in sse_messages(c.get(f"/agent/sessions/{sid}/events")) if n == "message"]
    assert seen == stored == on_a["events"]
    assert "".join(f"{MARK}-line{i}\n" for i in range(1, 81)) == output(seen)
    # After the restart, live events reached B through NATS (not only by reading the store).
    assert health["followed"]["bus"] > 0, health
    assert on_a["end"]["status"] == "done"

    # An approval asked on A is answered through B (forwarded over NATS to the replica that runs it).
    with a.client() as c, c.stream("POST", "/agent/generate", json={"goal": "touch the flag"}) as r:
        sid2 = r.headers["X-Session-Id"]
        kinds: list[str] = []
        for name, data, _ in sse_messages(r):
            if name != "message":
                assert data["status"] == "done", data
                break
            kinds.append(data["kind"])
            if data["kind"] == "approval_required":
                body = {"session": sid2, "action": data["data"]["action"], "approved": True}
                with b.client() as cb:
                    got = cb.post("/agent/reply", json=body)
                assert got.status_code == 200 and got.json()["replica"] == "a", got.text
                # A second answer to the same action is refused (by A while the run goes on, by B
                # once it has ended): never applied twice.
                with b.client() as cb:
                    again = cb.post("/agent/reply", json=body)
                detail = again.json()["detail"]
                assert again.status_code == 409 and ("not waiting" in detail or "not running" in detail)
    assert "approval_required" in kinds and flag.exists()
