"""Run a tool module in a child process (``fazai.tools.child``) and stream what it logs.

The parent turns the child's JSON lines into callbacks as they arrive: ``on_log("log", msg)`` for
``ctx.log`` and ``on_log("stderr", line)`` for anything the tool printed. The loop turns those into
``exec_log`` events.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fazai.tools.sandbox import Isolation, run_streaming

LogStream = Literal["log", "stderr"]
# Lines kept per stream in the outcome (the callback sees every line): a chatty tool cannot
# exhaust the daemon's memory.
KEEP_LINES = 2000
LogCallback = Callable[[LogStream, str], Awaitable[None] | None]
Mode = Literal["check", "test", "run"]


@dataclass(slots=True)
class ChildOutcome:
    """Everything a child run reported."""

    mode: Mode
    exit_code: int | None
    timed_out: bool
    duration_s: float
    isolation: Isolation
    logs: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def first(self, kind: str) -> dict[str, Any] | None:
        """The first protocol message of ``kind`` (``result``, ``error``, ``spec``, ``tests_done``)."""
        return next((m for m in self.messages if m.get("t") == kind), None)

    @property
    def error(self) -> str | None:
        """Why the run failed, in one line (None when it did not)."""
        if self.timed_out:
            return f"timed out after {self.duration_s:.1f}s (killed)"
        err = self.first("error")
        if err:
            return str(err.get("error"))
        if self.exit_code not in (0, None) and self.mode != "test":
            tail = " | ".join(self.stderr[-3:])
            return f"exited with code {self.exit_code}" + (f": {tail}" if tail else "")
        if self.exit_code is None:
            return "did not finish"
        return None


def child_env() -> dict[str, str]:
    """The environment of a tool process: the scrubbed allow-list (no API keys or tokens, see
    :func:`fazai.targets.local.scrubbed_environ`), plus what makes ``fazai`` importable."""
    from fazai.targets.local import scrubbed_environ

    env = scrubbed_environ()
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # A generated tool must not pick up modules from whatever directory the daemon runs in.
    env.pop("PYTHONPATH", None)
    return env


async def run_child(
    mode: Mode,
    source: str,
    filename: str,
    *,
    timeout_s: float,
    args: dict[str, Any] | None = None,
    tests: list[dict[str, Any]] | None = None,
    sandboxed: bool = False,
    sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
    acting: bool = False,
    scratch: str | None = None,
    on_log: LogCallback | None = None,
    cwd: str | None = None,
) -> ChildOutcome:
    """Run ``source`` in ``fazai.tools.child`` in ``mode``; kill it at ``timeout_s``."""
    request: dict[str, Any] = {"source": source, "filename": filename, "args": args or {}}
    if tests is not None:
        request["tests"] = tests
    outcome_logs: list[str] = []
    outcome_stderr: list[str] = []
    messages: list[dict[str, Any]] = []

    async def on_line(stream: str, line: str) -> None:
        if stream == "stdout":
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if isinstance(msg, dict) and "t" in msg:
                if msg["t"] == "log":
                    text = str(msg.get("msg", ""))
                    if len(outcome_logs) < KEEP_LINES:
                        outcome_logs.append(text)
                    await _call(on_log, "log", text)
                elif len(messages) < KEEP_LINES:
                    messages.append(msg)
                return
        if len(outcome_stderr) < KEEP_LINES:
            outcome_stderr.append(line)
        await _call(on_log, "stderr", line)

    res = await run_streaming(
        [sys.executable, "-I", "-m", "fazai.tools.child", mode],
        timeout_s=timeout_s,
        sandboxed=sandboxed,
        sandbox_mode=sandbox_mode,
        acting=acting,
        scratch=scratch,
        stdin_data=json.dumps(request).encode(),
        on_line=on_line,
        env=child_env(),
        cwd=cwd,
        keep_lines=0,
    )
    return ChildOutcome(
        mode=mode,
        exit_code=res.exit_code,
        timed_out=res.timed_out,
        duration_s=res.duration_s,
        isolation=res.isolation,
        logs=outcome_logs,
        stderr=outcome_stderr,
        messages=messages,
    )


async def _call(cb: LogCallback | None, stream: LogStream, text: str) -> None:
    if cb is None:
        return
    maybe = cb(stream, text)
    if asyncio.iscoroutine(maybe):
        await maybe
