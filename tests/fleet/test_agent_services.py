"""A real fazai-agent samples a real systemd user manager and journald (tests/systemd_user.py); its
batches go through the real hub into the metric store, and metric playbooks on ``units_failed`` and
``unit_restarts:NAME`` run; ``fazai metrics NODE`` shows the new metrics."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fazai.node.settings import AgentSettings
from fleet.harness import AgentProc, FleetDaemon
from services import free_port
from systemd_user import user_systemd  # noqa: F401  (fixture)

FAILED = """
name: unit-failed
trigger: {metric: {name: units_failed, node: "web-*", above: 0}}
steps:
  - webhook: {url: "HOOK", message: "{metric.node}: {metric.value} failed unit(s)"}
"""

FLAPPING = """
name: unit-flapping
trigger: {metric: {name: "unit_restarts:fz-flap", above: 0}}
steps:
  - webhook: {url: "HOOK", message: "fz-flap restarted {metric.value} times on {metric.node}"}
"""

JOURNAL = """
name: journal-errors
trigger: {metric: {name: journal_errors, above: 0}}
steps:
  - webhook: {url: "HOOK", message: "newest: {metric.labels.last1}"}
"""


class Hook:
    """A real HTTP receiver of the playbooks' webhooks, on a port of this checkout's range."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                recv.bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_service_telemetry_through_the_hub_fires_playbooks(tmp_path: Path, user_systemd) -> None:  # noqa: F811
    sd = user_systemd
    sd.run_unit("fz-web", "sleep 600")
    sd.run_unit("fz-flap", "echo '<3>fz-flap: bind: Address already in use' >&2; sleep 0.3; exit 1",
                "Restart=always", "RestartSec=300ms", "StartLimitIntervalSec=0")  # fmt: skip
    sd.run_unit("fz-broken", "echo '<3>fz-broken: cannot open /etc/fz.conf' >&2; exit 2")
    hook = Hook()
    books = tmp_path / "books"
    books.mkdir()
    for name, text in (("failed", FAILED), ("flap", FLAPPING), ("journal", JOURNAL)):
        (books / f"{name}.yaml").write_text(text.replace("HOOK", hook.url))
    extra = f'\n[playbooks]\ndir = "{books}"\ndetect_local = false\n[telemetry]\nsample_interval_s = 0\n'
    d = FleetDaemon(tmp_path / "srv", extra=extra).start()
    agent = AgentProc(d.home, "web-09")
    d.agents = [agent]  # type: ignore[attr-defined]
    try:
        res = agent.enroll(d, d.token())
        assert res.returncode == 0, res.stderr
        s = AgentSettings.load(agent.state)
        s.systemctl, s.journalctl = sd.systemctl, sd.journalctl
        s.save(agent.state)
        agent.start("--telemetry", "0.5", "--watch-unit", "fz-web", "--watch-unit", "fz-flap")
        d.wait_connected("web-09")
        want = {"units_failed", "journal_errors", "unit_active:fz-web", "unit_restarts:fz-flap", "load1"}
        deadline, latest = time.monotonic() + 60, {}
        with d.http() as c:
            while time.monotonic() < deadline:
                r = c.get("/telemetry/nodes/web-09")
                latest = r.json().get("latest", {}) if r.status_code == 200 else {}
                if want <= set(latest) and len(hook.bodies) >= 3:
                    break
                time.sleep(0.3)
            assert want <= set(latest), (latest, agent.lines[-10:])
            assert latest["units_failed"]["value"] == 1.0 and latest["unit_active:fz-web"]["value"] == 1.0
            series = c.get("/telemetry/nodes/web-09", params={"since": 600}).json()["series"]
            assert max(v for _, v in series["unit_restarts:fz-flap"]) >= 1
            assert sum(v for _, v in series["journal_errors"]) >= 1  # fz-flap logs one err line a start
            runs = {r["playbook"]: r for r in c.get("/playbooks/runs").json()}
        texts = sorted(b["text"] for b in hook.bodies)
        assert "web-09: 1.0 failed unit(s)" in texts, texts
        assert any(t.startswith("fz-flap restarted ") and t.endswith(" on web-09") for t in texts), texts
        assert any(t.startswith("newest: fz-") and "service: fz-" in t for t in texts), texts
        assert runs["unit-failed"]["trigger"]["metric"]["name"] == "units_failed"
        shown = d.cli("metrics", "web-09").stdout
        for name in ("units_failed", "journal_errors", "unit_active:fz-web", "unit_restarts:fz-flap"):
            assert name in shown, shown
    finally:
        agent.stop()
        d.stop()
        hook.close()
