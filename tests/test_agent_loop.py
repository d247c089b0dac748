"""The think → act → observe loop, driven by the scripted provider against the real local target."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from _agent_doubles import RecordingProvider, ScriptedInteraction
from fazai.agent.deps import AgentDeps, KBHit
from fazai.agent.executors import Outcome
from fazai.agent.loop import run_agent
from fazai.config import AgentSettings, SafetySettings
from fazai.models.scripted import ScriptedError, ScriptedProvider
from fazai.protocol import Event
from fazai.safety import SafetyPolicy


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


def done(answer: str = "ok") -> str:
    return act("done", answer=answer, status="success")


def make_deps(outputs, *, settings: AgentSettings | None = None, policy=None, **kw) -> AgentDeps:
    provider = RecordingProvider(ScriptedProvider(outputs, chunk_size=kw.pop("chunk_size", 3),
                                                  token_delay_s=kw.pop("token_delay_s", 0.0)),
                                 supports_grammar=kw.pop("supports_grammar", None))  # fmt: skip
    return AgentDeps(
        provider=provider,
        policy=policy or SafetyPolicy(SafetySettings()),
        settings=settings or AgentSettings(),
        **kw,
    )


async def run(deps, goal="check the server", *, interaction=None, abort=None, prior=(), on_event=None):
    events: list[Event] = []
    abort = abort or asyncio.Event()
    async for ev in run_agent(
        goal,
        session_id="s1",
        deps=deps,
        interaction=interaction or ScriptedInteraction(),
        abort=abort,
        prior_events=prior,
    ):
        events.append(ev)
        if on_event is not None:
            on_event(ev, abort)
    return events


def kinds(events, skip=("token",)) -> list[str]:
    return [e.kind for e in events if e.kind not in skip]


def of(events, kind) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


async def test_every_action_kind_in_one_run():
    deps = make_deps([
        'First a plan.\n' + act("plan", steps=["look", "answer"]),
        act("shell", command="echo hello; echo oops >&2"),
        act("observe", summary="it says hello", next="answer"),
        act("ask", question="Report in English?", options=["yes", "no"], default="yes"),
        done("hello"),
    ])  # fmt: skip
    inter = ScriptedInteraction(answers=["yes"])
    events = await run(deps, interaction=inter)
    assert kinds(events) == [
        "context",
        "action", "plan", "observe",
        "action", "exec_log", "exec_log", "exec_end", "observe",
        "action", "observe",
        "action", "ask", "reply", "observe",
        "action", "grounding", "done",
    ]  # fmt: skip
    assert [a["id"] for a in of(events, "action")] == [1, 2, 3, 4, 5]
    assert of(events, "action")[0]["reasoning"] == "First a plan."
    assert all(e.session == "s1" and e.seq == 0 for e in events)
    logs = {d["stream"]: d["text"] for d in of(events, "exec_log")}
    assert logs == {"stdout": "hello\n", "stderr": "oops\n"}
    shell_obs = of(events, "observe")[1]
    assert shell_obs["action"] == 2 and shell_obs["exit_code"] == 0 and shell_obs["status"] == "ok"
    assert "stdout:\nhello" in shell_obs["text"] and "stderr:\noops" in shell_obs["text"]
    assert of(events, "reply") == [{"action": 4, "answer": "yes"}]
    assert of(events, "done")[0] == {"action": 5, "answer": "hello", "status": "success", "iterations": 5}
    assert inter.questions == [(4, "Report in English?")]
    # Tokens replay the model's text (up to each action's closing brace).
    assert "".join(e.data["text"] for e in events if e.kind == "token").startswith("First a plan.\n{")
    assert deps.provider.sessions_closed == 1


async def test_model_sees_observations_and_the_stable_system_prompt():
    deps = make_deps([act("shell", command="echo marker-42"), done()])
    await run(deps)
    first, second = deps.provider.calls
    assert first["messages"][0] == second["messages"][0]  # stable system prompt (prefix cache)
    assert first["messages"][1] == second["messages"][1]  # goal message unchanged
    assert second["messages"][-1].role == "user" and "marker-42" in second["messages"][-1].content
    assert second["messages"][-2].content == '{"action": "shell", "command": "echo marker-42"}'


async def test_approval_granted_runs_the_command(tmp_path):
    marker = tmp_path / "created"
    deps = make_deps([act("shell", command=f"touch {marker}"), done()])
    inter = ScriptedInteraction(approve_result=True)
    events = await run(deps, interaction=inter)
    assert kinds(events)[:6] == ["context", "action", "approval_required", "reply", "exec_end", "observe"]
    req = of(events, "approval_required")[0]
    assert (req["action"], req["summary"], req["risk"], req["target"]) == (
        1,
        f"touch {marker}",
        "changes_state",
        "local",
    )
    assert req["reasons"]  # the policy says why
    assert of(events, "reply")[0] == {"action": 1, "approved": True}
    assert marker.exists()


async def test_approval_denied_never_runs_and_the_model_is_told(tmp_path):
    marker = tmp_path / "created"
    deps = make_deps([act("shell", command=f"touch {marker}"), done()])
    events = await run(deps, interaction=ScriptedInteraction(approve_result=False))
    assert not marker.exists()
    assert "exec_end" not in kinds(events)
    obs = of(events, "observe")[0]
    assert obs["status"] == "denied" and "DENIED" in obs["text"]
    assert kinds(events)[-1] == "done"


async def test_forbidden_command_never_runs_and_needs_no_approval(tmp_path):
    marker = tmp_path / "ran"
    deps = make_deps([act("shell", command=f"mkfs.ext4 /dev/null; touch {marker}"), done()])
    inter = ScriptedInteraction()
    events = await run(deps, interaction=inter)
    assert not marker.exists() and inter.approvals == []
    assert "approval_required" not in kinds(events) and "exec_end" not in kinds(events)
    obs = of(events, "observe")[0]
    assert obs["status"] == "forbidden" and "FORBIDDEN" in obs["text"] and obs["risk"] == "forbidden"


async def test_format_errors_then_recovery():
    deps = make_deps([
        "I think I should check the disk",
        '{"action": "shell"}',
        act("research", query="x"),
        done("recovered"),
    ])  # fmt: skip
    events = await run(deps)
    errs = [d for d in of(events, "observe") if d["status"] == "format_error"]
    assert len(errs) == 3
    assert "no JSON action found" in errs[0]["text"]
    assert 'give "command" (one command)' in errs[1]["text"]
    assert "not available here" in errs[2]["text"]
    assert of(events, "done")[0]["answer"] == "recovered"
    assert of(events, "action")[0]["id"] == 1  # format errors take no action id
    last_prompt = deps.provider.calls[-1]["messages"]
    assert "FORMAT ERROR" in last_prompt[-1].content


async def test_format_errors_exhausted_end_with_a_clear_error():
    deps = make_deps(["nope"] * 3 + [done()], settings=AgentSettings(max_format_errors=2))
    events = await run(deps)
    assert kinds(events)[-1] == "error"
    err = events[-1].data
    assert err["reason"] == "format_errors" and "3 answers in a row" in err["message"]
    assert len(deps.provider.calls) == 3


async def test_iteration_limit():
    deps = make_deps([act("observe", summary=f"step {i}") for i in range(10)],
                     settings=AgentSettings(max_iterations=3))  # fmt: skip
    events = await run(deps)
    assert len(of(events, "action")) == 3
    assert events[-1].kind == "error" and events[-1].data["reason"] == "max_iterations"
    assert "agent.max_iterations" in events[-1].data["message"]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def test_abort_during_a_long_sleep_is_quick_and_kills_the_group():
    deps = make_deps([act("shell", command="sleep 300 & echo $!; wait"), done()])
    marks: dict[str, float] = {}
    pids: list[int] = []

    def on_event(ev, abort):
        if ev.kind == "exec_log":
            pids.append(int(ev.data["text"].split()[0]))
            marks["abort"] = time.monotonic()
            abort.set()

    events = await run(deps, on_event=on_event)
    elapsed = time.monotonic() - marks["abort"]
    assert events[-1].kind == "aborted" and events[-1].data["during"] == "command"
    assert elapsed < 1.0, f"abort took {elapsed:.2f}s"
    assert of(events, "exec_end")[0]["cancelled"] is True
    for _ in range(50):
        if _gone(pids[0]):
            break
        await asyncio.sleep(0.02)
    assert _gone(pids[0]), "the sleep outlived the abort"
    assert len(deps.provider.calls) == 1  # nothing ran after the abort


async def test_abort_during_generation():
    deps = make_deps(["thinking " * 500 + done()], token_delay_s=0.01, chunk_size=2)

    def on_event(ev, abort):
        if ev.kind == "token":
            abort.set()

    events = await run(deps, on_event=on_event)
    assert events[-1].kind == "aborted" and events[-1].data["during"] == "generation"
    assert len([e for e in events if e.kind == "token"]) < 5


async def test_abort_during_an_approval_wait(tmp_path):
    deps = make_deps([act("shell", command=f"touch {tmp_path / 'x'}"), done()])

    def on_event(ev, abort):
        if ev.kind == "approval_required":
            asyncio.get_running_loop().call_later(0.05, abort.set)

    events = await run(deps, interaction=ScriptedInteraction(block=True), on_event=on_event)
    assert events[-1].kind == "aborted" and events[-1].data["during"] == "approval"
    assert not (tmp_path / "x").exists()


async def test_provider_error_becomes_an_error_event():
    deps = make_deps([act("observe", summary="a"), ScriptedError("backend exploded")])
    events = await run(deps)
    assert events[-1].kind == "error" and events[-1].data["reason"] == "provider"
    assert "backend exploded" in events[-1].data["message"]
    deps = make_deps([])  # script exhausted: also a provider error, never an exception
    events = await run(deps)
    assert events[-1].data["reason"] == "provider" and "exhausted" in events[-1].data["message"]


async def test_ask_nobody_can_answer_stops_blocked():
    deps = make_deps([act("ask", question="Which disk?"), done()])
    events = await run(deps, interaction=ScriptedInteraction(answers=[None]))
    assert events[-1].kind == "done"
    assert events[-1].data["status"] == "blocked" and "Which disk?" in events[-1].data["answer"]
    assert len(deps.provider.calls) == 1


async def test_output_truncation_head_and_tail_stated():
    settings = AgentSettings(observation_head_chars=100, observation_tail_chars=100)
    deps = make_deps([act("shell", command="seq 1 5000"), done()], settings=settings)
    events = await run(deps)
    full = "".join(d["text"] for d in of(events, "exec_log"))
    assert full == "".join(f"{i}\n" for i in range(1, 5001))  # the log keeps everything
    obs = of(events, "observe")[0]
    assert obs["truncated"] is True and obs["stdout_chars"] == len(full)
    text = obs["text"]
    assert "\n1\n2\n3\n" in text and text.rstrip().endswith("4999\n5000")
    assert f"characters omitted: showing the first 100 and the last 100 of {len(full)}" in text
    assert len(text) < 400


async def test_shell_timeout_and_unknown_target():
    deps = make_deps([
        act("shell", command="sleep 30", timeout=0.3),
        act("shell", command="uptime", target="db1"),
        done(),
    ])  # fmt: skip
    events = await run(deps)
    timeout_obs, target_obs = of(events, "observe")[:2]
    assert timeout_obs["status"] == "timeout" and "TIMED OUT" in timeout_obs["text"]
    assert target_obs["status"] == "error" and "unknown target 'db1'" in target_obs["text"]


async def test_session_wall_time_limit():
    deps = make_deps(
        [act("shell", command="sleep 30"), done()], settings=AgentSettings(session_timeout_s=0.5)
    )
    events = await run(deps)
    assert events[-1].kind == "error" and events[-1].data["reason"] == "session_timeout"


async def test_resume_continues_the_history_and_the_ids():
    deps = make_deps(
        [act("plan", steps=["a"]), act("shell", command="echo first-run"), act("observe", summary="x")]
    )

    def on_event(ev, abort):
        if ev.kind == "exec_end":
            abort.set()

    first = await run(deps, on_event=on_event)
    assert first[-1].kind == "aborted"
    deps2 = make_deps([act("shell", command="echo second-run"), done("resumed")])
    second = await run(deps2, prior=first)
    assert "context" not in kinds(second)  # same goal, unfinished: a continuation
    assert [d["id"] for d in of(second, "action")] == [3, 4]
    prompt = deps2.provider.calls[0]["messages"]
    joined = "\n".join(m.content for m in prompt)
    assert "first-run" in joined and joined.count("Goal: check the server") == 1
    # The rebuilt prompt is the same one the first run would have sent next (prefix cache survives).
    before = [m.content for m in deps.provider.calls[1]["messages"]]
    assert [m.content for m in prompt[: len(before)]] == before
    assert len(prompt) == len(before) + 2


async def test_resume_after_a_crash_mid_action_reports_the_interruption():
    deps = make_deps([act("shell", command="echo x")])
    events = await run(deps)
    crashed = [e for e in events if e.kind in ("context", "action")]  # the log ends at the action
    deps2 = make_deps([done()])
    second = await run(deps2, prior=crashed)
    assert second[0].kind == "observe" and second[0].data["status"] == "interrupted"
    assert "interrupted" in deps2.provider.calls[0]["messages"][-1].content


async def test_new_goal_on_a_finished_session():
    first = await run(make_deps([done("one")]), goal="goal one")
    deps2 = make_deps([done("two")])
    second = await run(deps2, goal="goal two", prior=first)
    assert of(second, "context")[0]["goal"] == "goal two"
    assert "New goal: goal two" in deps2.provider.calls[0]["messages"][-1].content


async def test_grammar_is_sent_to_providers_that_support_it():
    deps = make_deps([done()], supports_grammar=True)
    await run(deps)
    grammar = deps.provider.calls[0]["constraint"].grammar
    assert "act-shell" in grammar and "act-research" not in grammar
    deps = make_deps([done()])
    await run(deps)
    assert deps.provider.calls[0]["constraint"] is None


async def test_context_hooks_and_extra_executors():
    class KB:
        async def search(self, query, *, limit):
            return [KBHit("postfix relay", "postconf -e relayhost=", status="verified", score=0.9)]

    async def facts():
        return "os: Debian 12"

    async def research(action, step):
        yield step.event("research_result", action=step.action_id, results=[{"title": "t"}])
        yield Outcome(f"1 result for {action.query}")

    deps = make_deps([act("research", query="relay"), done()], facts=facts, knowledge=KB(),
                     executors={"research": research})  # fmt: skip
    events = await run(deps)
    ctx = of(events, "context")[0]
    assert ctx["facts"] == "os: Debian 12" and ctx["kb"][0]["title"] == "postfix relay"
    system, user = deps.provider.calls[0]["messages"][:2]
    assert "- research:" in system.content
    assert "os: Debian 12" in user.content and "[verified] postfix relay" in user.content
    assert kinds(events)[1:4] == ["action", "research_result", "observe"]


async def test_consumer_leaving_mid_command_kills_it():
    deps = make_deps([act("shell", command="sleep 300 & echo $!; wait")])
    agen = run_agent("g", session_id="s", deps=deps, interaction=ScriptedInteraction(), abort=asyncio.Event())
    pid = None
    async for ev in agen:
        if ev.kind == "exec_log":
            pid = int(ev.data["text"].split()[0])
            break
    await agen.aclose()
    for _ in range(100):
        if _gone(pid):
            break
        await asyncio.sleep(0.02)
    assert _gone(pid)


async def test_answer_cut_at_the_token_limit_is_explained():
    from fazai.models.base import SessionParams

    deps = make_deps(["let me think " * 50 + done(), done()], params=SessionParams(max_tokens=20))
    events = await run(deps)
    err = of(events, "observe")[0]
    assert err["status"] == "format_error" and "token limit" in err["text"]
    assert events[-1].kind == "done"


async def test_assume_yes_runs_state_changes_without_asking_but_never_forbidden(tmp_path):
    made, wiped = tmp_path / "made", tmp_path / "wiped"
    deps = make_deps(
        [act("shell", command=f"touch {made}"), act("shell", command=f"rm -rf / ; touch {wiped}"), done()],
        policy=SafetyPolicy(SafetySettings(), assume_yes=True),
    )
    inter = ScriptedInteraction(approve_result=False)
    events = await run(deps, interaction=inter)
    assert made.exists() and not wiped.exists() and inter.approvals == []
    assert [d["status"] for d in of(events, "observe")] == ["ok", "forbidden"]


async def test_abort_during_a_question():
    deps = make_deps([act("ask", question="Which disk?"), done()])

    def on_event(ev, abort):
        if ev.kind == "ask":
            asyncio.get_running_loop().call_later(0.05, abort.set)

    events = await run(deps, interaction=ScriptedInteraction(block=True), on_event=on_event)
    assert events[-1].kind == "aborted" and events[-1].data["during"] == "ask"
    assert events[-1].data["reason"] == "aborted by the operator during ask"


async def test_an_action_repeated_verbatim_is_not_run_twice_and_then_only_done_is_offered(tmp_path):
    marker = tmp_path / "count"
    cmd = f"echo x >> {marker}"
    deps = make_deps(
        [act("shell", command=cmd), act("shell", command=cmd), act("shell", command="echo y"),
         done("counted")],
        policy=SafetyPolicy(SafetySettings(auto_approve=["read_only", "changes_state"])),
        supports_grammar=True,
    )  # fmt: skip
    events = await run(deps)
    observed = of(events, "observe")
    assert [o["status"] for o in observed] == ["ok", "repeated", "format_error"]
    assert "not run again" in observed[1]["text"]
    assert marker.read_text() == "x\n"  # the second identical shell did not run
    assert kinds(events)[-1] == "done"
    after_repeat = deps.provider.calls[2]["constraint"].grammar
    assert "act-done" in after_repeat and "act-shell" not in after_repeat


async def test_a_read_repeated_after_the_machine_changed_runs_again(tmp_path):
    f = tmp_path / "f"
    deps = make_deps(
        [act("shell", command=f"cat {f}"), act("shell", command=f"echo 1 > {f}"),
         act("shell", command=f"cat {f}"), done("1")],
        policy=SafetyPolicy(SafetySettings(auto_approve=["read_only", "changes_state"])),
    )  # fmt: skip
    events = await run(deps)
    assert [o["status"] for o in of(events, "observe")] == ["failed", "ok", "ok"]


async def test_a_plan_is_offered_once_per_run():
    deps = make_deps([act("plan", steps=["uptime"]), act("plan", steps=["uptime"]), done("up")])
    events = await run(deps)
    observed = of(events, "observe")
    assert "step 1 ('uptime')" in observed[0]["text"]
    # The second plan is not an offered action for that turn: a format error, then done.
    assert observed[1]["status"] != "ok" and kinds(events)[-1] == "done"


async def test_a_placeholder_copied_from_the_prompt_is_not_run(tmp_path):
    deps = make_deps([act("shell", command="id <user>"), act("shell", command="id -un"), done("root")])
    events = await run(deps)
    first, second = of(events, "observe")[:2]
    assert first["status"] == "error" and "NOT RUN: <user> is a placeholder" in first["text"]
    assert not any(e.kind == "exec_end" and e.data["action"] == 1 for e in events)
    assert second["status"] == "ok"
