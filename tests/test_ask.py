"""``fazai ask``: the agent's question mode, driven by the scripted provider on the real local target."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _agent_doubles import RecordingProvider, ScriptedInteraction
from fazai.agent.ask import ASK_RULES, CommandCache, ask_deps, ask_result
from fazai.agent.deps import AgentDeps
from fazai.agent.grammar import grammar_for
from fazai.agent.loop import run_agent
from fazai.config import AskSettings, SafetySettings
from fazai.models.scripted import ScriptedProvider
from fazai.protocol import Event, ShellAction, parse_action
from fazai.safety import SafetyPolicy

REPO = Path(__file__).resolve().parents[1]


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


def done(answer: str) -> str:
    return act("done", answer=answer, status="success")


def make(
    outputs, *, cache: CommandCache | None = None, safety: SafetySettings | None = None, **ask
) -> tuple[AgentDeps, RecordingProvider]:
    provider = RecordingProvider(ScriptedProvider(outputs, chunk_size=5))
    base = AgentDeps(provider=provider, policy=SafetyPolicy(safety or SafetySettings(), assume_yes=True))
    return ask_deps(base, AskSettings(**ask), cache), provider


async def run(deps: AgentDeps, question: str = "a question") -> list[Event]:
    events = []
    async for ev in run_agent(
        question, session_id="s1", deps=deps, interaction=ScriptedInteraction(), abort=asyncio.Event()
    ):
        events.append(ev)
    return events


def of(events, kind):
    return [e for e in events if e.kind == kind]


async def test_state_changing_command_is_refused_and_reported(tmp_path: Path) -> None:
    victim = tmp_path / "created"
    deps, provider = make([act("shell", command=f"touch {victim}"), done("refused: read-only mode")])
    events = await run(deps, "create a file")
    assert not victim.exists()
    assert not of(events, "approval_required")  # refused, never asked
    (skip,) = of(events, "exec_skip")
    assert skip.data["reason"] == "refused" and skip.data["risk"] == "changes_state"
    obs = of(events, "observe")[0].data["text"]
    assert "REFUSED" in obs and "read-only" in obs
    # The model saw the refusal in its next turn.
    assert "REFUSED" in provider.calls[1]["messages"][-1].content
    result = ask_result("create a file", events)
    assert result["executed_commands"] == []
    assert result["results"][0]["status"] == "refused" and not result["results"][0]["executed"]
    assert result["metrics"]["refused"] == 1 and result["metrics"]["dangerous_executed"] == 0


async def test_forbidden_command_is_refused(tmp_path: Path) -> None:
    deps, _ = make([act("shell", command="rm -rf /"), done("I will not do that")])
    events = await run(deps)
    (skip,) = of(events, "exec_skip")
    assert skip.data["reason"] == "refused" and skip.data["risk"] == "forbidden"
    assert not of(events, "exec_end")


async def test_plan_commands_run_in_parallel(tmp_path: Path) -> None:
    # A barrier: each command registers itself, then waits until all three are present. Run one after
    # another, the first would give up ("alone") before the others ever started.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    cmd = (
        f"touch {barrier}/$RANDOM$$; for i in $(seq 100); do "
        f'[ "$(ls {barrier} | wc -l)" -ge 3 ] && echo met-{{n}} && exit 0; sleep 0.05; done; echo alone'
    )
    commands = [cmd.replace("{n}", str(i)) for i in range(3)]
    # `touch` in a temp dir, declared read-only by the site's policy (as [safety] extra_read_only allows).
    deps, _ = make([act("shell", commands=commands), done("all met")],
                   safety=SafetySettings(extra_read_only=["touch"]))  # fmt: skip
    events = await run(deps)
    ends = of(events, "exec_end")
    assert len(ends) == 3 and {e.data["cmd"] for e in ends} == {0, 1, 2}
    result = ask_result("q", events)
    outputs = sorted(r["output"].strip() for r in result["results"])
    assert outputs == ["met-0", "met-1", "met-2"]
    assert result["executed_commands"] == commands


async def test_second_identical_command_within_ttl_is_served_from_cache() -> None:
    cache = CommandCache(ttl_s=300)
    cmd = "date +%s%N; echo $$"  # different output on every real run
    first, _ = make([act("shell", command=cmd), done("one")], cache=cache)
    e1 = await run(first)
    second, _ = make([act("shell", command=cmd), done("two")], cache=cache)
    e2 = await run(second)
    r1, r2 = ask_result("q", e1), ask_result("q", e2)
    assert r1["metrics"]["commands"] == 1 and r1["metrics"]["cache_hits"] == 0
    assert r2["metrics"]["commands"] == 0 and r2["metrics"]["cache_hits"] == 1
    (skip,) = of(e2, "exec_skip")
    assert skip.data["reason"] == "cached" and skip.data["command"] == cmd
    assert r2["results"][0]["output"] == r1["results"][0]["output"]
    assert "(cached result)" in of(e2, "observe")[0].data["text"]


async def test_expired_or_disabled_cache_runs_again_and_repeats_in_a_run_are_skipped() -> None:
    cmd = "date +%s%N"
    deps, _ = make([act("shell", command=cmd), act("shell", command=cmd), done("x")], cache_enabled=False)
    events = await run(deps)
    result = ask_result("q", events)
    assert result["metrics"]["commands"] == 1 and result["metrics"]["redundant_skipped"] == 1
    assert of(events, "exec_skip")[0].data["reason"] == "redundant"
    cache = CommandCache(ttl_s=0)
    for _ in range(2):
        d, _ = make([act("shell", command=cmd), done("x")], cache=cache)
        assert ask_result("q", await run(d))["metrics"]["commands"] == 1


async def test_iteration_limit_ends_with_the_models_best_answer_and_names_it() -> None:
    outputs = [act("shell", command="echo 1"), act("shell", command="echo 2"), done("best so far: 2")]
    deps, provider = make(outputs, max_iterations=2)
    events = await run(deps)
    (fin,) = of(events, "done")
    assert fin.data["limit"] == "ask.max_iterations" and "ask.max_iterations" in fin.data["stopped_by"]
    assert fin.data["answer"] == "best so far: 2" and fin.data["answer_source"] == "model"
    assert "LIMIT REACHED" in provider.calls[-1]["messages"][-1].content
    result = ask_result("q", events)
    assert result["iterations"] == 2 and result["stopped_by"] == fin.data["stopped_by"]
    assert result["executed_commands"] == ["echo 1", "echo 2"]


async def test_total_time_limit_ends_with_the_results_so_far() -> None:
    deps, _ = make([act("shell", command="echo partial; sleep 5"), done("never")], max_time_s=1.0)
    events = await run(deps)
    (fin,) = of(events, "done")
    assert fin.data["limit"] == "ask.max_time_s" and "ask.max_time_s" in fin.data["stopped_by"]
    assert fin.data["answer_source"] == "results" and "partial" in fin.data["answer"]
    result = ask_result("q", events)
    assert result["success"] is False and result["results"][0]["timed_out"] is True


async def test_per_command_timeout_is_reported_and_the_run_still_answers() -> None:
    deps, provider = make([act("shell", command="sleep 5"), done("sleep did not finish in time")],
                          command_timeout_s=0.3)  # fmt: skip
    events = await run(deps)
    (end,) = of(events, "exec_end")
    assert end.data["timed_out"] is True
    seen = provider.calls[1]["messages"][-1].content
    assert "timed out (ask.command_timeout_s = 0.3s)" in seen
    result = ask_result("q", events)
    assert result["success"] is True and result["answer"] == "sleep did not finish in time"
    assert result["results"][0]["status"] == "timeout"


async def test_json_shape_and_prompt() -> None:
    deps, provider = make([act("shell", commands=["echo 3", "uname -s"]), done("3 and Linux")])
    events = await run(deps, "what?")
    result = ask_result("what?", events, wall_s=1.0)
    assert {"question", "answer", "executed_commands", "results", "iterations", "success", "metrics"} <= set(
        result
    )
    keys = {"iterations", "commands", "model_calls", "tokens", "cache_hits", "duration_s", "actions"}
    assert set(result["metrics"]) >= keys | {"format_errors", "dangerous_executed"}
    assert result["success"] and result["iterations"] == 2 and result["metrics"]["model_calls"] == 2
    assert result["metrics"]["actions"] == 2 and result["metrics"]["tokens"] > 0
    assert provider.calls[0]["messages"][0].content == ASK_RULES
    assert of(events, "done")[0].data["mode"] == "ask"


def test_shell_action_forms_and_grammar() -> None:
    a = parse_action('{"action": "shell", "commands": ["uptime", "df -h"]}')
    assert isinstance(a, ShellAction) and a.all_commands() == ["uptime", "df -h"]
    assert "give" in str(parse_action('{"action": "shell", "command": "a", "commands": ["b"]}').message)
    assert '\\"commands\\": [' in grammar_for(["shell", "done"], multi_command=True)
    assert "commands" not in grammar_for(["shell", "done"])


def test_cli_json_with_scripted_provider(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([act("shell", command="echo 42"), done("42")]))
    (tmp_path / "fazai.toml").write_text("")
    env = {
        **os.environ,
        "FAZAI_CONFIG": str(tmp_path / "fazai.toml"),
        "FAZAI_PATHS__STATE_DIR": str(tmp_path / "state"),
        "FAZAI_PATHS__RUNTIME_DIR": str(tmp_path / "run"),
        "FAZAI_AI_PROVIDER__PROVIDER": "scripted",
        "FAZAI_AI_PROVIDER__SCRIPT": str(script),
        "FAZAI_DAEMON__PORT": "1",
    }
    p = subprocess.run([sys.executable, "-m", "fazai.cli.main", "ask", "--json", "--embedded", "the answer?"],
                       env=env, capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0, p.stderr[-2000:]
    assert result["answer"] == "42" and result["executed_commands"] == ["echo 42"]
    assert result["results"][0]["output"] == "42\n"


QWEN = REPO / ".cache" / "models" / "qwen2.5-coder-0.5b.gguf"


@pytest.mark.slow
def test_ask_kernel_version_with_real_model(tmp_path: Path) -> None:
    if not QWEN.exists():
        pytest.skip(f"{QWEN} is missing: link /work/cache/models/*.gguf into .cache/models")
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "run"}"\n'
        f'[worker]\nmodel = "{QWEN}"\nthreads = 2\nctx_size = 4096\nslots = 1\ncache_ram_mib = 256\n'
        f"batch_size = 64\n[ask]\nmax_time_s = 240\n[daemon]\nport = 1\n"
    )
    cmd = [sys.executable, "-m", "fazai.cli.main", "ask", "--json", "what is the kernel version?"]
    try:
        p = subprocess.run(cmd, env={**os.environ, "FAZAI_CONFIG": str(cfg)}, capture_output=True,
                           text=True, timeout=600, cwd=REPO, stdin=subprocess.DEVNULL)  # fmt: skip
    finally:
        # The CLI auto-started a detached worker for this config: stop it.
        subprocess.run(["pkill", "-f", str(tmp_path / "run")], check=False)
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["answer"], p.stderr[-2000:]
    # The kernel is among the system facts given as context, so a right answer may need no command.
    assert result["executed_commands"] or os.uname().release in result["answer"], result
    assert result["metrics"]["dangerous_executed"] == 0
    assert os.uname().release in result["answer"] or result["answer_source"] == "model", result


async def test_a_placeholder_copied_from_the_prompt_is_not_run_and_the_model_is_told() -> None:
    deps, _ = make([
        act("shell", commands=["id <user>", "grep -c '<Directory>' /dev/null"]),
        act("shell", command="id -un"),
        done("root"),
    ])  # fmt: skip
    events = await run(deps)
    (skip,) = of(events, "exec_skip")
    assert skip.data["reason"] == "placeholder" and skip.data["command"] == "id <user>"
    first = of(events, "observe")[0].data
    assert "NOT RUN: <user> is a placeholder" in first["text"]
    # The quoted '<Directory>' is a real search pattern: it ran.
    assert [r["status"] for r in first["results"]] == ["placeholder", "failed"]
    result = ask_result("q", events)
    assert result["executed_commands"] == ["grep -c '<Directory>' /dev/null", "id -un"]


async def test_knowledge_hits_are_left_out_of_questions_unless_kb_context() -> None:
    class Knowledge:
        def __init__(self) -> None:
            self.searched: list[str] = []

        async def search(self, goal: str, limit: int) -> list:
            self.searched.append(goal)
            return []

    for on in (False, True):
        kn = Knowledge()
        provider = RecordingProvider(ScriptedProvider([done("x")]))
        base = AgentDeps(provider=provider, policy=SafetyPolicy(SafetySettings()), knowledge=kn, kb_limit=3)
        await run(ask_deps(base, AskSettings(kb_context=on), None), "how many cores?")
        assert kn.searched == (["how many cores?"] if on else [])


async def test_a_command_repeated_in_one_question_leaves_the_model_only_done() -> None:
    # Seen on the ops bench: a failed recipe command re-issued five times until the time limit.
    cmd = "grep -rh backup /etc/no-such-cron 2>/dev/null"
    script = [act("shell", command=cmd), act("shell", command=cmd), done("no backup job found")]
    provider = RecordingProvider(ScriptedProvider(script, chunk_size=5), supports_grammar=True)
    base = AgentDeps(provider=provider, policy=SafetyPolicy(SafetySettings(), assume_yes=True))
    deps = ask_deps(base, AskSettings(), CommandCache(ttl_s=300))
    events = await run(deps)
    observes = of(events, "observe")
    assert [o.data["status"] for o in observes] == ["partial", "repeated"]
    assert of(events, "done")[0].data["answer"] == "no backup job found"
    assert len(provider.calls) == 3
    grammars = [c["constraint"].grammar for c in provider.calls]  # the third turn may only answer
    assert "act-shell" in grammars[1] and "act-shell" not in grammars[2] and "act-done" in grammars[2]
