"""The answer gate in the loop: an ungrounded success goes back to the model once, then the run ends
``unverified`` — in agent and question mode, rendered distinctly, never counted as success."""

from __future__ import annotations

import asyncio
import io
import json

from _agent_doubles import ScriptedInteraction
from fazai.agent.ask import ask_deps, ask_result
from fazai.agent.deps import AgentDeps
from fazai.agent.loop import run_agent
from fazai.cli.render import Renderer
from fazai.config import AgentSettings, AskSettings, SafetySettings
from fazai.models.scripted import ScriptedProvider
from fazai.protocol import Event
from fazai.safety import SafetyPolicy


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


def done(answer: str) -> str:
    return act("done", answer=answer, status="success")


def deps(outputs: list[str], **settings) -> AgentDeps:
    return AgentDeps(
        provider=ScriptedProvider(outputs),
        policy=SafetyPolicy(SafetySettings()),
        settings=AgentSettings(**settings),
    )


async def run(d: AgentDeps, goal: str) -> list[Event]:
    return [
        e
        async for e in run_agent(
            goal, session_id="s1", deps=d, interaction=ScriptedInteraction(), abort=asyncio.Event()
        )
        if e.kind != "token"
    ]


def of(events: list[Event], kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


BANS = "echo 'Currently banned: 3'"


async def test_an_invented_value_goes_back_once_then_ends_unverified() -> None:
    events = await run(deps([act("shell", command=BANS), done("7 IPs are banned"), done("7 IPs are banned")]),
                       "how many IPs are banned?")  # fmt: skip
    verdicts = of(events, "grounding")
    assert [v["outcome"] for v in verdicts] == ["retry", "unverified"]
    assert verdicts[0]["ungrounded"] == [{"value": "7", "kind": "number"}]
    sent_back = next(o for o in of(events, "observe") if o.get("status") == "ungrounded")
    assert "'7' (number) is not in any command output" in sent_back["text"]
    (end,) = of(events, "done")
    assert end["status"] == "unverified" and end["claimed_status"] == "success"
    assert end["answer"] == "7 IPs are banned" and "'7'" in end["reason"]


async def test_a_corrected_answer_is_accepted_with_its_sources() -> None:
    events = await run(deps([act("shell", command=BANS), done("7 IPs are banned"), done("3 IPs are banned")]),
                       "how many IPs are banned?")  # fmt: skip
    verdicts = of(events, "grounding")
    assert [v["outcome"] for v in verdicts] == ["retry", "accepted"]
    assert verdicts[1]["grounded"] == [
        {"value": "3", "kind": "number", "source": "action 1", "how": "literal"}
    ]
    assert of(events, "done")[-1]["status"] == "success"


async def test_the_gate_can_be_turned_off_and_ignores_failed_answers() -> None:
    off = await run(deps([done("7 IPs are banned")], grounding=False), "how many IPs are banned?")
    assert of(off, "grounding") == [] and of(off, "done")[0]["status"] == "success"
    failed = await run(deps([act("done", answer="could not read 7 files", status="failed")]), "read them")
    assert of(failed, "grounding") == [] and of(failed, "done")[0]["status"] == "failed"


async def test_question_mode_at_its_limit_judges_the_last_word_too() -> None:
    base = deps([act("shell", command=BANS), done("9 banned"), done("9 banned")])
    d = ask_deps(base, AskSettings(max_iterations=2), None)
    events = await run(d, "how many IPs are banned?")
    (end,) = of(events, "done")
    assert end["status"] == "unverified" and end["limit"] == "ask.max_iterations"
    result = ask_result("how many IPs are banned?", events)
    assert result["status"] == "unverified" and result["success"] is False
    assert result["grounding"]["outcome"] == "unverified" and result["grounding"]["problems"]


async def test_unverified_renders_distinctly() -> None:
    events = await run(deps([done("7 IPs are banned"), done("7 IPs are banned")]), "how many IPs are banned?")
    out = io.StringIO()
    r = Renderer(out=out, verbose=True)
    for e in events:
        r.handle(e)
    summary = r.finish()
    text = out.getvalue()
    assert "done (unverified)" in text and "not verified" in text and "answer sent back" in text
    assert summary["status"] == "unverified"
