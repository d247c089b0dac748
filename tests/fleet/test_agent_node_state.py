"""An agent's connection drives node_state playbooks: ``up`` when it connects, ``down`` only when it
has been gone past ``fleet.down_after_s`` (a reconnect within that is no outage)."""

from __future__ import annotations

import time
from pathlib import Path

from fleet.harness import AgentProc, FleetDaemon
from fleet.test_agent_services import Hook

BOOK = """
name: node-{to}
trigger: {{node_state: {{node: "edge-*", to: {to}}}}}
steps:
  - webhook: {{url: "HOOK", message: "{{node.name}} {{node.from}} -> {{node.to}}"}}
"""


def _wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_connect_is_up_a_quick_reconnect_is_nothing_and_gone_is_down(tmp_path: Path) -> None:
    hook = Hook()
    books = tmp_path / "books"
    books.mkdir()
    for to in ("up", "down"):
        (books / f"{to}.yaml").write_text(BOOK.format(to=to).replace("HOOK", hook.url))
    extra = f'down_after_s = 6\n[playbooks]\ndir = "{books}"\ndetect_local = false\n'
    d = FleetDaemon(tmp_path / "srv", extra=extra).start()
    agent = AgentProc(d.home, "edge-7")
    d.agents = [agent]  # type: ignore[attr-defined]
    texts = lambda: [b["text"] for b in hook.bodies]  # noqa: E731
    try:
        assert agent.enroll(d, d.token()).returncode == 0
        agent.start()
        d.wait_connected("edge-7")
        _wait(lambda: "edge-7  -> up" in texts(), 30, f"the up playbook ({texts()})")
        # Gone and back within down_after_s: no down (the next up is no change either).
        agent.stop()
        agent.start()
        d.wait_connected("edge-7")
        time.sleep(7)
        assert not any(t.endswith("-> down") for t in texts()), texts()
        agent.stop()
        _wait(lambda: "edge-7 up -> down" in texts(), 30, f"the down playbook ({texts()})")
        with d.http() as c:
            runs = [r["playbook"] for r in c.get("/playbooks/runs").json()]
        assert runs.count("node-down") == 1 and runs.count("node-up") == 1, runs
    finally:
        agent.stop()
        d.stop()
        hook.close()
