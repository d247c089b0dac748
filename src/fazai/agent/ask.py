"""The question mode (``fazai ask``): the same loop with its own prompt, policy, executor and limits.

- Prompt: answer exactly what was asked; plan → run → evaluate → adjust; answer from the output only.
- Policy: read-only. A command the safety policy classifies as anything but ``read_only`` is refused
  (never asked) and the refusal goes back to the model and into the result.
- Executor: a ``shell`` action may carry several independent ``commands``; they run in parallel.
  Results are cached with a TTL (keyed by target and command, shared by the runs of one process);
  repeats are served from the cache or skipped as redundant, shown as ``exec_skip`` events.
- Limits (``[ask]``): iterations, total time, per-command timeout. A run stopped by a limit still ends
  with ``done``: the best answer so far and the limit's name (the loop's ``answer_at_limit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fazai.agent.ask_policy import REFUSAL, ReadOnlyHints, ReadOnlyPolicy, risk_name
from fazai.agent.deps import AgentDeps
from fazai.agent.executors import Outcome, Step, placeholder_note, placeholders, resolve_target
from fazai.agent.observation import excerpt
from fazai.config import AgentSettings, AskSettings
from fazai.protocol import Event, ShellAction
from fazai.targets.base import ExecResult, Stream, TargetError

DANGEROUS = frozenset({"opaque", "destructive", "forbidden"})
ASK_ACTIONS = ("shell", "done")

# Per-command output the model sees (the event log keeps it all).
_HEAD, _TAIL = 1500, 500
_RESULT_CHARS = 4000  # per-command output kept in the result of `fazai ask --json`

ASK_RULES = """\
You are FazAI in question mode. You answer an operator's question about this Linux server by running
read-only shell commands, then you answer exactly what was asked, with the values you found.

Each turn: at most one short line of reasoning, then ONE JSON action on a single line:
- run one command:
  {"action": "shell", "command": "<command>"}
- run several independent commands at once (they run in parallel):
  {"action": "shell", "commands": ["<command 1>", "<command 2>"]}
- answer (direct answer first, with the actual values):
  {"action": "done", "answer": "<answer>", "status": "success"}

How to work: plan the commands that give the answer, run them, read the results; run more only if
something is still missing; then answer.
Rules:
- Read only. Commands that change the system (delete, format, stop, kill, install, flush, write files)
  are refused in this mode. If the question asks for such a change, do not attempt it: answer with done,
  status "blocked", saying it was refused because question mode is read-only.
- Non-interactive one-liners. Filter with grep, awk, sort, head, wc to get exactly the value asked.
- Answer as soon as the output holds the answer: a number, a definite yes or no, or the complete list.
- Copy the exact values from the output into the answer: names, paths, ports, versions, times. When
  the question asks "which", name every item, not only how many.
- A failed command (not found, permission denied, empty output, timeout): try a different command or
  file; if there is none, answer and say what could not be checked.
- Never invent values: answer only from the outputs you received.
- Replace every <...> with real content.

Commands: start from the ones listed under "Commands that fit this question" when they fit; otherwise
use the standard read-only tool for what was asked (the service's own status command, its log file,
/proc, /etc, ss, ip, df, systemctl, journalctl -u <unit>, dpkg-query, getent, openssl, docker ps).
A scratch directory of your own may be listed: you may write files there (cmd > <dir>/out.txt), nowhere else.

Example (the values come from the outputs):
Question: How many IPs are banned in fail2ban?
{"action": "shell", "command": "fail2ban-client status"}
Observation: ... Jail list: <jail1>, <jail2>
{"action": "shell", "commands": ["fail2ban-client status <jail1>", "fail2ban-client status <jail2>"]}
Observation: ... Currently banned: <a> ... Currently banned: <b>
{"action": "done", "answer": "<a + b> IPs banned (<a> in <jail1>, <b> in <jail2>).", "status": "success"}"""


def ask_system_prompt(offered: Sequence[str]) -> str:
    """The question mode's system message (stable across questions: the worker caches it)."""
    return ASK_RULES


# --- cache -----------------------------------------------------------------------------------------


@dataclass
class _Cached:
    result: ExecResult
    at: float
    action: int
    session: str


class CommandCache:
    """Results of read-only commands by (target, command), valid for ``ttl_s`` seconds.

    One per process (the daemon shares it between questions). Timed-out or cancelled runs are not kept.
    """

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._items: dict[tuple[str, str], _Cached] = {}

    def get(self, target: str, command: str) -> _Cached | None:
        """The cached result, or None when absent or older than the TTL."""
        key = (target, _norm(command))
        item = self._items.get(key)
        if item is None:
            return None
        if time.monotonic() - item.at > self.ttl_s:
            del self._items[key]
            return None
        return item

    def put(self, target: str, command: str, result: ExecResult, action: int, session: str) -> None:
        """Remember a finished command."""
        if result.timed_out or result.cancelled or self.ttl_s <= 0:
            return
        self._items[(target, _norm(command))] = _Cached(result, time.monotonic(), action, session)


def _norm(command: str) -> str:
    return " ".join(command.split())


# --- the executor ----------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"command not found|No such file or directory|not installed", re.I)
_DENIED = re.compile(r"permission denied|operation not permitted|must be root|are you root", re.I)


def classify_result(result: ExecResult) -> str:
    """ok, empty, failed, not_found, permission_denied or timeout (drives the recovery hint)."""
    if result.timed_out:
        return "timeout"
    if result.exit_code == 127 or (result.exit_code != 0 and _NOT_FOUND.search(result.stderr)):
        return "not_found"
    if result.exit_code == 126 or _DENIED.search(result.stderr):
        return "permission_denied"
    if result.exit_code != 0:
        return "failed"
    if not result.stdout.strip():
        return "empty"
    return "ok"


_HINTS = {
    "failed": "the command failed: try an alternative command.",
    "not_found": "not found: use another tool or file (e.g. ss for netstat), or say it is not available.",
    "permission_denied": "permission denied: read a source that needs no privilege, or state the limit.",
    "empty": "empty output: try a variation (another path or pattern) before concluding there is nothing.",
    "timeout": "timed out ({limit}): use a faster, narrower command (a specific path, head), or split it.",
}


class AskShell:
    """The ``shell`` executor of one question: policy, cache, redundancy, parallel runs."""

    handles_repeats = True  # the loop leaves repeated commands to us: we replay their results

    def __init__(self, cache: CommandCache | None, ask: AskSettings):
        self.cache = cache
        self.ask = ask
        self.seen: dict[tuple[str, str], tuple[int, ExecResult]] = {}  # this run's commands

    async def __call__(self, action: ShellAction, step: Step) -> AsyncIterator[Event | Outcome]:
        deps, aid = step.deps, step.action_id
        target_name, target, unknown = resolve_target(action, deps)
        if target is None:
            yield unknown
            return
        commands = list(dict.fromkeys(c.strip() for c in action.all_commands()))
        entries: list[dict[str, Any]] = [{"command": c, "index": i} for i, c in enumerate(commands)]
        if len(commands) < len(action.all_commands()):
            yield step.event(
                "exec_skip", action=aid, reason="redundant", command="(duplicates in one action)"
            )
        to_run: list[dict[str, Any]] = []
        for e in entries:
            cmd = e["command"]
            holes = placeholders(cmd)
            if holes:
                # Copied from the prompt's command list: as shell it is a redirection, not a value.
                e.update(status="placeholder", holes=holes)
                yield step.event("exec_skip", action=aid, cmd=e["index"], command=cmd, reason="placeholder")
                continue
            d = deps.policy.check_command(cmd)
            e["risk"] = risk_name(d.risk)
            if d.verdict != "allow":
                e.update(status="refused", reasons=list(d.reasons))
                yield step.event("exec_skip", action=aid, cmd=e["index"], command=cmd, reason="refused",
                                 risk=e["risk"], reasons=list(d.reasons))  # fmt: skip
                continue
            key = (target_name, _norm(cmd))
            hit = self.cache.get(target_name, cmd) if self.cache is not None else None
            if hit is not None:
                e.update(
                    result=hit.result,
                    cached=True,
                    since=hit.action if hit.session == step.session_id else None,
                )
                yield step.event("exec_skip", action=aid, cmd=e["index"], command=cmd, reason="cached",
                                 age_s=round(time.monotonic() - hit.at, 1), exit_code=hit.result.exit_code,
                                 same_run=hit.session == step.session_id)  # fmt: skip
            elif key in self.seen:
                prev, res = self.seen[key]
                e.update(result=res, redundant=True, since=prev)
                yield step.event("exec_skip", action=aid, cmd=e["index"], command=cmd, reason="redundant",
                                 since=prev, exit_code=res.exit_code)  # fmt: skip
            else:
                to_run.append(e)
        if to_run:
            async for ev in self._run_parallel(to_run, target, target_name, step):
                yield ev
        if any(e.get("status") == "aborted" for e in entries):
            yield Outcome(None, status="aborted", stop="aborted", during="command")
            return
        text, results = self._observation(aid, entries)
        statuses = {r["status"] for r in results}
        status = "ok" if statuses <= {"ok", "empty"} else "refused" if statuses == {"refused"} else "partial"
        if entries and all(e.get("redundant") or e.get("since") is not None for e in entries):
            # Every command already ran in this question: the model has nothing new to read, and
            # small models otherwise re-issue the same command until time runs out.
            status = "repeated"
        yield Outcome(text, status=status, data={"results": results, "commands": commands})

    async def _run_parallel(
        self, entries: list[dict[str, Any]], target: Any, target_name: str, step: Step
    ) -> AsyncIterator[Event]:
        """Start every command at once; stream their output as events; record results in ``entries``."""
        aid = step.action_id
        queue: asyncio.Queue[Event] = asyncio.Queue()
        limit = min(self.ask.command_timeout_s, step.deps.settings.action_timeout_s)

        def sink(index: int, command: str) -> Any:
            def on_output(stream: Stream, text: str) -> None:
                queue.put_nowait(step.event("exec_log", action=aid, cmd=index, stream=stream, text=text))

            return on_output

        tasks: dict[asyncio.Task[ExecResult], dict[str, Any]] = {}
        for e in entries:
            timeout = max(0.1, min(limit, step.remaining()))
            e["timeout"] = timeout
            t = asyncio.ensure_future(
                target.run(
                    e["command"], timeout=timeout, on_output=sink(e["index"], e["command"]), cancel=step.abort
                )
            )
            tasks[t] = e
        pending: set[asyncio.Future[Any]] = set(tasks)
        try:
            while pending or not queue.empty():
                while not queue.empty():
                    yield queue.get_nowait()
                if not pending:
                    break
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, *pending}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
                for t in done - {getter}:
                    pending.discard(t)
                    e = tasks[t]  # type: ignore[index]
                    try:
                        res: ExecResult = t.result()
                    except TargetError as err:
                        res = ExecResult(127, "", f"could not start on {target_name}: {err}", 0.0)
                    e["result"] = res
                    if res.cancelled:
                        e["status"] = "aborted"
                    self.seen[(target_name, _norm(e["command"]))] = (aid, res)
                    if self.cache is not None:
                        self.cache.put(target_name, e["command"], res, aid, step.session_id)
                    yield step.event("exec_end", action=aid, cmd=e["index"], command=e["command"],
                                     exit_code=res.exit_code, duration_s=round(res.duration_s, 3),
                                     timed_out=res.timed_out, cancelled=res.cancelled,
                                     risk=e["risk"])  # fmt: skip
        finally:
            for t in pending:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t

    def _observation(self, aid: int, entries: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        """The text the model sees, and the structured per-command results (for ``--json``)."""
        parts: list[str] = []
        results: list[dict[str, Any]] = []
        multi = len(entries) > 1
        for e in entries:
            cmd = e["command"]
            label = f"$ {cmd}" if not multi else f"[{e['index'] + 1}] $ {cmd}"
            row: dict[str, Any] = {"command": cmd, "risk": e.get("risk")}
            if e.get("status") == "placeholder":
                parts.append(f"{label}\n{placeholder_note(e['holes'])}")
                results.append(
                    {**row, "status": "placeholder", "executed": False,
                     "error": f"placeholder {', '.join(e['holes'])}"}
                )  # fmt: skip
                continue
            if e.get("status") == "refused":
                why = "; ".join(e.get("reasons") or []) or REFUSAL
                parts.append(
                    f"{label}\nREFUSED ({e.get('risk')}): {why}. It did not run. Do not retry it; answer "
                    'with done (status "blocked") saying the change was refused, or read what you can.'
                )
                results.append({**row, "status": "refused", "executed": False, "error": why})
                continue
            res: ExecResult = e["result"]
            kind = classify_result(res)
            source = ""
            if e.get("cached"):
                source = " (cached result)"
            elif e.get("redundant"):
                source = f" (already ran in action {e['since']}: same result)"
            out, err = excerpt(res.stdout, _HEAD, _TAIL), excerpt(res.stderr, 600, 200)
            head = f"{label}{source}\nexit_code={res.exit_code} duration={res.duration_s:.2f}s"
            lines = [head]
            if out.text.strip():
                lines.append("stdout:\n" + out.text.rstrip("\n"))
            if err.text.strip():
                lines.append("stderr:\n" + err.text.rstrip("\n"))
            if not out.text.strip() and not err.text.strip():
                lines.append("(no output)")
            if kind != "ok":
                limit = f"ask.command_timeout_s = {e.get('timeout', self.ask.command_timeout_s):g}s"
                lines.append("hint: " + _HINTS[kind].format(limit=limit))
            parts.append("\n".join(lines))
            results.append({
                **row,
                "status": kind,
                "executed": not (e.get("cached") or e.get("redundant")),
                "cached": bool(e.get("cached")),
                "redundant": bool(e.get("redundant")),
                "exit_code": res.exit_code,
                "duration_s": round(res.duration_s, 3),
                "timed_out": res.timed_out,
                "output": res.stdout[:_RESULT_CHARS],
                "error": res.stderr[:1000],
            })  # fmt: skip
        return f"action {aid} (shell):\n" + "\n\n".join(parts), results


# --- building a question run -----------------------------------------------------------------------


def ask_agent_settings(ask: AskSettings, base: AgentSettings) -> AgentSettings:
    """The loop's limits for a question: ``[ask]`` iterations, total time and command timeout."""
    return base.model_copy(
        update={
            "max_iterations": ask.max_iterations,
            "session_timeout_s": ask.max_time_s,
            "action_timeout_s": ask.command_timeout_s,
            "max_format_errors": min(base.max_format_errors, 2),
        }
    )


def ask_deps(
    base: AgentDeps, ask: AskSettings, cache: CommandCache | None, *, scratch: Path | None = None
) -> AgentDeps:
    """Turn agent deps into question-mode deps (same provider, targets, facts; read-only knowledge).

    ``scratch``: the session's private directory, the one place its commands may write.
    """
    from dataclasses import replace

    shell = AskShell(cache if ask.cache_enabled else None, ask)
    knowledge = base.knowledge
    if knowledge is not None and ask.kb_context:
        knowledge = ReadOnlyHints(knowledge, base.policy, min_score=ask.kb_min_score)
    return replace(
        base,
        knowledge=knowledge,
        policy=ReadOnlyPolicy(base.policy, scratch),
        settings=ask_agent_settings(ask, base.settings),
        executors={"shell": shell},
        mode="ask",
        only_actions=ASK_ACTIONS,
        system_prompt=ask_system_prompt,
        multi_command=True,
        answer_at_limit=True,
        limit_names=("ask.max_iterations", "ask.max_time_s"),
        kb_limit=base.kb_limit if ask.kb_context else 0,
    )


# --- the result ------------------------------------------------------------------------------------


def ask_result(question: str, events: Iterable[Event], *, wall_s: float | None = None) -> dict[str, Any]:
    """``fazai ask --json``: the answer, the commands, per-command results and metrics, from the log."""
    evs = list(events)
    answer, success, iterations, stopped_by, limit, source, status = "", False, 0, None, None, None, None
    results: list[dict[str, Any]] = []
    actions = format_errors = tokens = model_calls = 0
    error: str | None = None
    grounding: dict[str, Any] | None = None
    for ev in evs:
        d = ev.data
        if ev.kind == "token":
            tokens += 1
        elif ev.kind == "action":
            actions += 1
            model_calls += 1
            if not d.get("final"):
                iterations = max(iterations, int(d.get("iteration") or 0))
        elif ev.kind == "observe":
            if d.get("status") == "format_error":
                format_errors += 1
                model_calls += 1
            results.extend(d.get("results") or [])
        elif ev.kind == "grounding":
            grounding = {
                k: d.get(k) for k in ("outcome", "grounded", "ungrounded", "contradictions", "problems")
            }
        elif ev.kind == "done":
            answer = str(d.get("answer") or "")
            status = str(d.get("status") or "success")
            source = d.get("answer_source", "model")
            stopped_by, limit = d.get("stopped_by"), d.get("limit")
            # A recipe's answer passed the same gate; a limit's fallback ("limit") is not an answer.
            success = status == "success" and source in ("model", "recipe")
            iterations = int(d.get("iterations") or iterations)
        elif ev.kind in ("error", "aborted"):
            error = str(d.get("message") or d.get("reason") or ev.kind)
            status = "aborted" if ev.kind == "aborted" else "failed"
    executed = [r["command"] for r in results if r.get("executed")]
    first, last = (evs[0].ts, evs[-1].ts) if evs else ("", "")
    out: dict[str, Any] = {
        "question": question,
        "answer": answer,
        "executed_commands": executed,
        "results": results,
        "iterations": iterations,
        "success": success,
        "status": status or "failed",
        "stopped_by": stopped_by,
        "limit": limit,
        "answer_source": source,
        "metrics": {
            "iterations": iterations,
            "commands": len(executed),
            "model_calls": model_calls,
            "tokens": tokens,
            "cache_hits": sum(1 for r in results if r.get("cached")),
            "redundant_skipped": sum(1 for r in results if r.get("redundant")),
            "refused": sum(1 for r in results if r.get("status") == "refused"),
            "duration_s": round(_seconds(first, last), 3),
            "actions": actions,
            "format_errors": format_errors,
            "dangerous_executed": sum(1 for r in results if r.get("executed") and r.get("risk") in DANGEROUS),
        },
    }
    if wall_s is not None:
        out["metrics"]["wall_s"] = round(wall_s, 3)
    if grounding is not None:
        out["grounding"] = grounding
    if error:
        out["error"] = error
    if evs:
        out["session"] = evs[0].session
    return out


def _seconds(first: str, last: str) -> float:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (b - a).total_seconds())
