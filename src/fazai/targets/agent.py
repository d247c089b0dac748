"""The ``agent`` target: commands run on a fleet node through fazaid's hub and its ``fazai-agent``.

The target knows nothing of WebSockets: it talks to an :class:`ActionRouter` (the fleet hub, which
lives in an outer layer), so the loop runs a session on a node exactly as on ``local``. Each command is
one fleet action (stored, with its id, state and result), and its output streams into ``on_output`` as
the agent sends it, so it lands in the session log as ``exec_log`` events like any other command.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fazai.targets.base import ExecResult, OutputCallback, TargetError


class _Submitted(Protocol):
    id: str


class ActionRouter(Protocol):
    """What the target needs from the fleet hub."""

    async def submit(
        self,
        nodes: list[str],
        kind: str,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        listener: Callable[[str, str], Awaitable[None] | None] | None = None,
    ) -> list[Any]: ...

    async def wait(self, action: str, timeout: float | None = None) -> dict[str, Any]: ...  # noqa: ASYNC109

    # Optional (wire revision 2): ``async def cancel(action, reason) -> str`` stops a command on its
    # node; a router without it leaves a cancelled command to finish there.


class AgentTarget:
    """Runs commands on node ``node`` through ``router``."""

    def __init__(
        self,
        router: ActionRouter,
        node: str,
        *,
        session: str | None = None,
        grace_s: float = 30.0,
        cancel_wait_s: float = 10.0,
    ):
        self.router = router
        self.node = node
        self.name = node
        self.session = session
        # Time on top of a command's own timeout for it to reach the node and its result to come back.
        self.grace_s = grace_s
        # After a cancel, how long to wait for the node to confirm the command is gone (its exit).
        self.cancel_wait_s = cancel_wait_s
        self.last_action: str | None = None

    async def _submit(self, kind: str, spec: dict[str, Any], listener: Any = None) -> str:
        try:
            (st,) = await self.router.submit([self.node], kind, spec, session=self.session, listener=listener)
        except Exception as e:
            raise TargetError(f"cannot send {kind} to node {self.node}: {e}") from e
        self.last_action = st.id
        return st.id

    async def _final(self, action: str, timeout: float | None) -> dict[str, Any]:  # noqa: ASYNC109
        try:
            return await self.router.wait(action, timeout)
        except TimeoutError as e:
            raise TargetError(
                f"node {self.node} did not answer action {action} within {timeout:.0f} s (offline?); "
                "its result will still be stored when it reconnects"
            ) from e
        except Exception as e:
            raise TargetError(f"action {action} on {self.node} failed: {e}") from e

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the node enforces it; we wait a grace more)
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` on the node (see ``Target.run``); a refusal by the node is a TargetError."""
        start = time.monotonic()
        spec: dict[str, Any] = {"command": command}
        if timeout is not None:
            spec["timeout_s"] = timeout
        aid = await self._submit("command.exec", spec, on_output)
        wait_for = (timeout + self.grace_s) if timeout is not None else None
        waiter = asyncio.ensure_future(self._final(aid, wait_for))
        canceller = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        try:
            done, _ = await asyncio.wait(
                {waiter, *([canceller] if canceller else [])}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if canceller is not None:
                canceller.cancel()
        if waiter not in done:
            row = await self._cancel(aid, waiter)
            res = (row or {}).get("result") or {}
            code = (row or {}).get("exit_code")
            return ExecResult(
                -15 if code is None else int(code),
                res.get("stdout", ""),
                res.get("stderr", ""),
                time.monotonic() - start,
                cancelled=True,
            )
        row = waiter.result()
        res = row.get("result") or {}
        if res.get("refused"):
            raise TargetError(f"node {self.node} refused: {res['refused']}")
        if row.get("exit_code") is None:
            raise TargetError(f"action {aid} on {self.node} failed: {res.get('error') or 'no exit code'}")
        return ExecResult(
            exit_code=int(row["exit_code"]),
            stdout=res.get("stdout", ""),
            stderr=res.get("stderr", ""),
            duration_s=float(res.get("duration_s") or time.monotonic() - start),
            timed_out=bool(res.get("timed_out")),
        )

    async def _cancel(self, aid: str, waiter: asyncio.Future[dict[str, Any]]) -> dict[str, Any] | None:
        """Stop ``aid`` on the node (``command.cancel``: its process group is killed) and wait a little
        for its exit; None when the node cannot confirm (older agent, offline: it finishes there)."""
        cancel = getattr(self.router, "cancel", None)
        how = None
        if cancel is not None:
            try:
                how = await cancel(aid, "the run was aborted")
            except Exception:  # the hub is going away: nothing more to stop
                how = None
        row = None
        if how in ("sent", "dequeued"):
            with contextlib.suppress(BaseException):
                row = await asyncio.wait_for(asyncio.shield(waiter), self.cancel_wait_s)
        if not waiter.done():
            waiter.cancel()
        with contextlib.suppress(BaseException):
            await waiter
        return row

    async def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` on the node (atomic, previous content kept as a backup)."""
        spec = {"path": path, "content": base64.b64encode(data).decode(), "mode": mode, "encoding": "base64"}
        row = await self._final(await self._submit("file.apply", spec), self.grace_s)
        self._check(row, "write", path)

    async def get_file(self, path: str) -> bytes:
        """Read the file at ``path`` on the node."""
        row = await self._final(await self._submit("file.read", {"path": path}), self.grace_s)
        data = self._check(row, "read", path)
        return base64.b64decode(data.get("content_b64", ""))

    def _check(self, row: dict[str, Any], what: str, path: str) -> dict[str, Any]:
        res = row.get("result") or {}
        if row.get("state") != "done" or not res.get("ok"):
            why = res.get("refused") or res.get("error") or row.get("state")
            raise TargetError(f"cannot {what} {path} on {self.node}: {why}")
        return res.get("data") or {}
