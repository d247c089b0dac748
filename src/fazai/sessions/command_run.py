"""A run whose goal is one read-only shell command (``fazai ask --nodes SEL --command "uname -r"``).

No model: the command is checked by the safety policy (read-only only, as in question mode), run on
the run's target, and its output is the answer. It is still a session with its ordered log
(``action`` → ``exec_log``… → ``exec_end`` → ``done``), so a fan-out of a plain command over many
nodes costs one command per node and is replayed and audited like any other run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fazai.config import Settings
from fazai.protocol import Event
from fazai.safety import SafetyPolicy
from fazai.targets.base import TargetError
from fazai.targets.local import LocalTarget

ANSWER_CHARS = 4000  # output kept as the answer (the log keeps all of it)


def command_loop(settings: Settings) -> Any:
    """The runner's loop function for ``mode="command"`` runs."""

    async def run(
        goal: str,
        *,
        session_id: str,
        abort: asyncio.Event,
        options: Any = None,
        **_: Any,
    ) -> AsyncIterator[Event]:
        def ev(kind: str, /, **data: Any) -> Event:
            return Event(session=session_id, kind=kind, data=data)  # type: ignore[arg-type]

        target = getattr(options, "target", None) or LocalTarget()
        command = goal.strip()
        yield ev("context", goal=command, mode="command")
        shell = {"action": "shell", "command": command, "target": target.name}
        yield ev("action", id=1, kind="shell", iteration=1, reasoning="", said=command, action=shell,
                 source="command")  # fmt: skip
        d = SafetyPolicy(settings.safety).check_command(command)
        risk = str(getattr(d.risk, "value", d.risk))
        if d.verdict != "allow" or risk != "read_only":
            why = "; ".join(d.reasons) or risk
            yield ev("done", action=2, status="blocked", mode="command",
                     answer=f"refused: only read-only commands run this way ({risk}: {why})")  # fmt: skip
            return
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def on_output(stream: str, text: str) -> None:
            queue.put_nowait(ev("exec_log", action=1, stream=stream, text=text))

        timeout = settings.ask.command_timeout_s
        task = asyncio.ensure_future(target.run(command, timeout=timeout, on_output=on_output, cancel=abort))
        try:
            while not task.done() or not queue.empty():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            try:
                res = task.result()
            except TargetError as e:
                yield ev("error", message=f"the command could not run on {target.name}: {e}")
                return
        finally:
            if not task.done():
                task.cancel()
        yield ev("exec_end", action=1, exit_code=res.exit_code, duration_s=round(res.duration_s, 3),
                 timed_out=res.timed_out, cancelled=res.cancelled)  # fmt: skip
        if res.cancelled:
            yield ev("aborted", reason="aborted by the operator")
            return
        answer = res.stdout.strip() if res.ok else (res.stdout + res.stderr).strip()
        if res.timed_out:
            answer = f"timed out after {timeout:g}s ({'; '.join(answer.splitlines()[-3:])})"
        yield ev("done", action=2, answer=answer[:ANSWER_CHARS], status="success" if res.ok else "failed",
                 mode="command", exit_code=res.exit_code)  # fmt: skip

    return run
