"""``use_tool``: run a registered tool with a time limit, streaming its log lines.

Module tools (generated or stable) run in a child process (``fazai.tools.child``) inside bubblewrap:
a tool whose derived class is read-only in the strict sandbox (read-only root, no network, no
capabilities), so even a mis-derived one cannot change anything; an acting tool (the operator approved
it) in bubblewrap with the real filesystem. Without bubblewrap module tools are off (a clear error, no
plain-subprocess fallback). The whole process group is killed at the time limit. Built-in
tools run in-process under ``asyncio.wait_for``. Arguments are checked against the tool's declared
inputs before anything runs. The safety decision (risk class → run / ask / refuse) belongs to the
caller: :func:`tool_risk` says what to check.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fazai.tools.registry import ToolInfo, ToolRegistry
from fazai.tools.runner import LogCallback, LogStream, run_child
from fazai.tools.sandbox import SandboxUnavailable
from fazai.tools.spec import Risk, check_args


@dataclass(slots=True)
class ToolRun:
    """The outcome of one ``use_tool``."""

    name: str
    kind: str
    risk: Risk
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    logs: list[str] = field(default_factory=list)

    def to_observation(self, max_chars: int = 20000) -> dict[str, Any]:
        """The structured observation for the model: result or error, logs, duration, truncation stated."""
        obs: dict[str, Any] = {
            "tool": self.name,
            "kind": self.kind,
            "risk": self.risk,
            "ok": self.ok,
            "duration_s": round(self.duration_s, 3),
            "timed_out": self.timed_out,
        }
        if self.result is not None:
            text = json.dumps(self.result, default=str)
            if len(text) > max_chars:
                obs["result_truncated"] = f"result cut at {max_chars} of {len(text)} chars"
                obs["result_text"] = text[:max_chars]
            else:
                obs["result"] = self.result
        if self.error:
            obs["error"] = self.error
        logs = self.logs
        if len(logs) > 40:
            obs["logs"] = [*logs[:20], f"… {len(logs) - 40} lines omitted …", *logs[-20:]]
        else:
            obs["logs"] = logs
        return obs


class BuiltinContext:
    """The ``ctx`` of a built-in tool: ``log``, ``testing``, ``tmp`` and the executor's extras."""

    def __init__(self, log: Callable[[str], Awaitable[None]], tmp: str, extra: dict[str, Any] | None = None):
        self._log = log
        self.testing = False
        self.tmp = tmp
        for k, v in (extra or {}).items():
            setattr(self, k, v)

    async def log(self, msg: object) -> None:
        """Stream one log line to the operator (await it)."""
        await self._log(str(msg))


def tool_risk(registry: ToolRegistry, name: str, session: str | None = None) -> Risk:
    """The risk class of a tool, for ``SafetyPolicy.check_risk`` before :func:`use_tool`.

    Raises :class:`fazai.tools.registry.ToolNotFound` when there is no such tool.
    """
    return registry.get(name, session).risk


async def use_tool(
    registry: ToolRegistry,
    name: str,
    args: dict[str, Any],
    *,
    session: str | None = None,
    timeout_s: float = 60.0,
    on_log: LogCallback | None = None,
    extra: dict[str, Any] | None = None,
    sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
) -> ToolRun:
    """Run tool ``name`` with ``args``; stream ``on_log("log"|"stderr", text)`` as lines arrive.

    Never raises for a failing tool: the error is in the returned :class:`ToolRun`. Raises
    :class:`fazai.tools.registry.ToolNotFound` when the tool does not exist.
    """
    info = registry.get(name, session)
    problems = check_args(info.spec.inputs, args)
    if problems:
        return ToolRun(
            name=name,
            kind=info.kind,
            risk=info.risk,
            ok=False,
            error="invalid arguments: "
            + "; ".join(problems)
            + f" (inputs schema: {json.dumps(info.spec.inputs)})",
        )
    if info.builtin is not None:
        return await _run_builtin(info, args, timeout_s, on_log, extra)
    return await _run_module(info, args, timeout_s, on_log, sandbox_mode)


async def _run_module(
    info: ToolInfo,
    args: dict[str, Any],
    timeout_s: float,
    on_log: LogCallback | None,
    sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
) -> ToolRun:
    assert info.path is not None
    try:
        with tempfile.TemporaryDirectory(prefix="fazai-use-") as cwd:
            out = await run_child(
                "run",
                info.source(),
                str(info.path),
                args=args,
                timeout_s=timeout_s,
                sandboxed=True,
                sandbox_mode=sandbox_mode,
                acting=info.risk != "read_only",
                scratch=cwd,
                on_log=on_log,
                cwd=cwd,
            )
    except SandboxUnavailable as e:
        return ToolRun(name=info.name, kind=info.kind, risk=info.risk, ok=False, error=str(e))
    res = out.first("result")
    error = out.error
    return ToolRun(
        name=info.name,
        kind=info.kind,
        risk=info.risk,
        ok=res is not None and error is None,
        result=res.get("result") if res else None,
        error=error,
        timed_out=out.timed_out,
        duration_s=out.duration_s,
        logs=out.logs + [f"stderr: {line}" for line in out.stderr[-20:]],
    )


async def _run_builtin(
    info: ToolInfo,
    args: dict[str, Any],
    timeout_s: float,
    on_log: LogCallback | None,
    extra: dict[str, Any] | None,
) -> ToolRun:
    assert info.builtin is not None
    logs: list[str] = []

    async def log(msg: str) -> None:
        logs.append(msg)
        if on_log is not None:
            stream: LogStream = "log"
            maybe = on_log(stream, msg)
            if asyncio.iscoroutine(maybe):
                await maybe

    start = time.perf_counter()
    run = ToolRun(name=info.name, kind="builtin", risk=info.risk, ok=False, logs=logs)
    with tempfile.TemporaryDirectory(prefix="fazai-use-") as tmp:
        ctx = BuiltinContext(log, tmp, extra)
        try:
            result = await asyncio.wait_for(info.builtin.run(args, ctx), timeout=timeout_s)
        except TimeoutError:
            run.timed_out = True
            run.error = f"timed out after {timeout_s:g}s (cancelled)"
        except Exception as e:  # a tool's failure is an observation, not a crash of the loop
            run.error = f"{type(e).__name__}: {e}"
        else:
            if isinstance(result, dict):
                run.ok, run.result = True, result
            else:
                run.error = f"run must return a dict, got {type(result).__name__}"
    run.duration_s = time.perf_counter() - start
    return run
