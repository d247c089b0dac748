"""research / tool_spec / use_tool through the real agent loop, driven by the scripted provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fazai.config import ResearchSettings
from fazai.models.scripted import ScriptedProvider
from fazai.tools.registry import ToolRegistry
from research_fakes import free_port, serve
from test_tools import BAD_MARKER, GOOD_MARKER, MARKER_SPEC, answer


@dataclass(frozen=True)
class Decision:
    verdict: str
    risk: str
    reasons: tuple[str, ...] = ()


@dataclass
class RiskPolicy:
    """Follows SafetyPolicy's API: read_only runs, changes_state asks, anything in ``deny`` is refused."""

    deny: Sequence[str] = ()
    risks: list[tuple[str, str]] = field(default_factory=list)

    def check_command(self, command: str) -> Decision:
        return Decision("allow", "read_only")

    def check_risk(self, risk: str, what: str) -> Decision:
        self.risks.append((risk, what))
        if risk in self.deny:
            return Decision("deny", "forbidden", ("tools of this risk are forbidden here",))
        return Decision("allow" if risk == "read_only" else "ask", risk, ("changes the system",))


@dataclass
class Operator:
    approve_result: bool = True
    approvals: list[tuple[int, str, str]] = field(default_factory=list)

    async def approve(self, action_id: int, summary: str, risk: str, reasons: Sequence[str]) -> bool:
        self.approvals.append((action_id, summary, risk))
        return self.approve_result

    async def answer(self, action_id, question, options, default):
        return default


class KB:
    async def search(self, query: str, *, limit: int) -> list:
        from fazai.agent import deps as agent_deps

        return [agent_deps.KBHit("Banned IPs in fail2ban", "fail2ban-client status sshd", status="verified")][
            :limit
        ]


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


async def run(deps, operator: Operator) -> list:
    from fazai.agent import loop

    return [
        ev
        async for ev in loop.run_agent(
            "work", session_id="s_exec", deps=deps, interaction=operator, abort=asyncio.Event()
        )
    ]


def of(events, kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


async def test_research_then_tool_spec_repair_then_use_tool(tmp_path: Path):
    from fazai.agent import deps as agent_deps
    from fazai.agent import tool_executors as tx

    target = tmp_path / "marker.txt"
    outputs = [
        act("research", query="fail2ban banned ips", sources=["kb", "web", "docs"]),
        act(
            "tool_spec",
            name="write_marker",
            description=MARKER_SPEC["description"],
            inputs=MARKER_SPEC["inputs"],
            tests=MARKER_SPEC["tests"],
        ),
        answer(BAD_MARKER),  # the tool's first draft (same provider), fails its tests
        answer(GOOD_MARKER),  # the repair
        act("use_tool", name="write_marker", args={"path": str(target), "text": "hi"}),
        act("done", answer="marker written", status="success"),
    ]
    registry = ToolRegistry(tmp_path / "tools")
    dead = f"http://127.0.0.1:{free_port()}"
    with serve("searxng") as (web_url, _):
        settings = ResearchSettings(enabled=["kb", "context7", "web"], searxng_url=web_url, context7_url=dead)
        deps = agent_deps.AgentDeps(
            provider=ScriptedProvider(outputs),
            policy=RiskPolicy(),
            knowledge=KB(),
            executors=tx.tool_executors(tx.ToolServices(registry=registry, research=settings)),
        )
        operator = Operator()
        events = await run(deps, operator)

    kinds = [e.kind for e in events if e.kind != "token"]
    assert "error" not in kinds, of(events, "error")
    research = of(events, "research_result")[0]
    assert [h["source"] for h in research["hits"]] == ["kb", "web", "web"]
    assert research["hits"][0]["title"] == "Banned IPs in fail2ban [verified]"
    assert research["unavailable"][0].startswith("Context7 unavailable: ConnectError")

    progress = [d["text"] for d in of(events, "exec_log") if d["stream"] == "tool_spec"]
    assert any("validation failed" in t for t in progress) and any("is valid" in t for t in progress)
    ready = of(events, "tool_ready")[0]
    assert ready["tool"] == "write_marker" and ready["risk"] == "changes_state" and ready["tests_passed"] == 2

    # changes_state → the operator was asked before the tool ran.
    assert operator.approvals == [
        (3, f'use_tool write_marker {{"path": "{target}", "text": "hi"}}', "changes_state")
    ]
    logs = [d["text"] for d in of(events, "exec_log") if d["stream"] == "log"]
    assert logs == [f"writing {target}", f"wrote {target}"]
    assert of(events, "exec_end")[-1]["exit_code"] == 0
    assert target.read_text() == "hi"
    assert of(events, "done")[0]["status"] == "success"


async def test_use_tool_denied_by_policy_and_unknown_tool(tmp_path: Path):
    from fazai.agent import deps as agent_deps
    from fazai.agent import tool_executors as tx

    registry = ToolRegistry(tmp_path / "tools")
    stable = tmp_path / "tools" / "stable"
    stable.mkdir(parents=True)
    (stable / "wipe.py").write_text(
        'SPEC = {"name": "wipe", "description": "wipe it", "risk": "destructive"}\n'
        "def run(args, ctx):\n    raise SystemExit('must never run')\n"
    )
    outputs = [
        act("use_tool", name="wipe", args={}),
        act("use_tool", name="nope", args={}),
        act("done", answer="stopped", status="blocked"),
    ]
    policy = RiskPolicy(deny=("destructive",))
    deps = agent_deps.AgentDeps(
        provider=ScriptedProvider(outputs),
        policy=policy,
        executors=tx.tool_executors(tx.ToolServices(registry=registry)),
    )
    events = await run(deps, Operator())
    observations = [d.get("text") or json.dumps(d) for d in of(events, "observe")]
    assert any("FORBIDDEN" in o for o in observations), observations
    assert any("no tool named 'nope'" in o for o in observations), observations
    assert policy.risks == [("destructive", "use_tool wipe {}")]
    assert not of(events, "exec_log")
