"""Running one action on the node: policy and capability checks, then the command or file operation.

Every frame a run produces goes through the :class:`~fazai.node.journal.Journal` outbox (``emit``),
so it survives a lost connection. Output is coalesced (32 KiB or 50 ms) and capped per action.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fazai import wire
from fazai.node.journal import Journal
from fazai.node.settings import AgentSettings
from fazai.safety import Risk, SafetyPolicy
from fazai.targets.local import LocalTarget

Wake = Callable[[], None]
log = logging.getLogger("fazai.agent")


class Runner:
    """Executes actions for the connection, writing their frames to the outbox."""

    def __init__(self, settings: AgentSettings, journal: Journal, wake: Wake, node: str):
        self.settings = settings
        self.journal = journal
        self.wake = wake
        self.node = node
        self.policy = SafetyPolicy(settings.safety)
        self.max_risk = Risk(settings.max_risk)
        self.target = LocalTarget(name=node)
        self.max_output = settings.max_output_bytes
        self.executions = 0  # commands actually started (tests and the bench read it)
        self.cancels: dict[str, asyncio.Event] = {}  # running commands: set = kill the process group
        # Cancelled before they started (waiting for a slot): not started at all. Bounded.
        self.cancelled_early: dict[str, str] = {}

    def cancel(self, action: str, reason: str = "") -> bool:
        """``command.cancel``: stop ``action`` (True when it was running or waiting to run here)."""
        ev = self.cancels.get(action)
        if ev is not None:
            log.info("cancelling %s (%s)", action, reason or "asked by the server")
            ev.set()
            return True
        if self.journal.state(action) is None:  # not received to run yet, or still waiting
            self.cancelled_early[action] = reason
            while len(self.cancelled_early) > 1024:
                self.cancelled_early.pop(next(iter(self.cancelled_early)))
            return True
        return False  # finished already: its result stands

    def emit(self, kind: str, spec: Any, action: str | None, *, final: bool = False) -> None:
        fid = wire.new_id("m")
        text = wire.frame(kind, spec, id=fid, node=self.node, corr=action)
        if final and action is not None:
            self.journal.finish(action, fid, text)
        else:
            self.journal.put(fid, action, text)
        self.wake()

    def recover(self) -> None:
        """Report actions that were running when the agent last stopped (they are not run again)."""
        for aid, kind in self.journal.interrupted():
            why = "the agent restarted while this ran; not run again (exactly-once)"
            if kind == "command.exec":
                self.emit(
                    "command.exit", wire.CommandExit(action=aid, exit_code=-1, refused=why), aid, final=True
                )
            else:
                self.emit("result", wire.Result(action=aid, ok=False, error=why), aid, final=True)

    async def handle(self, env: wire.Envelope, spec: Any) -> None:
        """Run one action frame from the server, at most once per action id."""
        aid = env.id
        prior = self.journal.begin(aid, env.kind)
        if prior is not None:
            state, final = prior
            if state == "done" and final is not None and self.journal.pending() == 0:
                # The server lost our result (it had acked nothing): send the stored final frame again.
                self.journal.put(wire.new_id("m"), aid, final)
                self.wake()
            return
        refusal = self._refusal(env.kind, spec)
        if aid in self.cancelled_early:
            why = self.cancelled_early.pop(aid) or "asked by the server"
            refusal = f"cancelled before it started ({why})"
        if refusal is not None:
            if env.kind == "command.exec":
                self.emit(
                    "command.exit",
                    wire.CommandExit(action=aid, exit_code=-1, refused=refusal),
                    aid,
                    final=True,
                )
            else:
                self.emit("result", wire.Result(action=aid, ok=False, refused=refusal), aid, final=True)
            return
        try:
            if env.kind == "command.exec":
                await self._exec(aid, spec)
                return
            data = await self._file_or_tool(env.kind, spec)
            self.emit("result", wire.Result(action=aid, ok=True, data=data), aid, final=True)
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            if env.kind == "command.exec":
                exit_ = wire.CommandExit(action=aid, exit_code=-1, refused=f"could not run: {err}")
                self.emit("command.exit", exit_, aid, final=True)
            else:
                self.emit("result", wire.Result(action=aid, ok=False, error=err), aid, final=True)

    def _refusal(self, kind: str, spec: Any) -> str | None:
        if kind not in self.settings.capabilities:
            return f"capability {kind} is not allowed on this node (agent.json capabilities)"
        if kind == "command.exec":
            d = self.policy.check_command(spec.command)
            if d.verdict == "deny":
                return f"refused by the node's safety policy: {d.risk.value} ({'; '.join(d.reasons)})"
            if d.risk > self.max_risk:
                return f"refused: {d.risk.value} is above this node's max_risk {self.max_risk.value}"
        return None

    async def _exec(self, aid: str, spec: wire.CommandExec) -> None:
        self.executions += 1
        buf: list[tuple[str, str]] = []
        state = {"seq": 0, "sent": 0, "size": 0, "truncated": False, "last": time.monotonic()}
        loop = asyncio.get_running_loop()
        timer: list[asyncio.TimerHandle] = []

        def flush() -> None:
            # Merge consecutive pieces of the same stream into one frame.
            while buf:
                stream = buf[0][0]
                parts = []
                while buf and buf[0][0] == stream:
                    parts.append(buf.pop(0)[1])
                data = "".join(parts)
                for i in range(0, len(data), wire.CHUNK_BYTES):
                    self.emit(
                        "command.output",
                        wire.CommandOutput(
                            action=aid, seq=state["seq"], stream=stream, data=data[i : i + wire.CHUNK_BYTES]
                        ),
                        aid,
                    )
                    state["seq"] += 1
            state["size"] = 0
            state["last"] = time.monotonic()

        def on_output(stream: str, text: str) -> None:
            room = self.max_output - state["sent"]
            if room <= 0:
                state["truncated"] = True
                return
            if len(text) > room:
                text = text[:room]
                state["truncated"] = True
            state["sent"] += len(text)
            if not buf:
                # Coalesce for at most 50 ms: quiet output still streams, floods go out in big frames.
                timer.append(loop.call_later(0.05, flush))
            buf.append((stream, text))
            state["size"] += len(text)
            if state["size"] >= wire.CHUNK_BYTES:
                flush()

        target = self.target
        if spec.cwd or spec.env:
            target = LocalTarget(name=self.node, cwd=spec.cwd, env=spec.env)
        # command.cancel sets this: the local target kills the command's whole process group.
        self.cancels[aid] = cancel = asyncio.Event()
        try:
            res = await target.run(spec.command, timeout=spec.timeout_s, on_output=on_output, cancel=cancel)
        finally:
            self.cancels.pop(aid, None)
            for t in timer:
                t.cancel()
        flush()
        self.emit(
            "command.exit",
            wire.CommandExit(
                action=aid,
                exit_code=res.exit_code,
                duration_s=round(res.duration_s, 4),
                timed_out=res.timed_out,
                truncated=bool(state["truncated"]),
                chunks=int(state["seq"]),
            ),
            aid,
            final=True,
        )

    async def _file_or_tool(self, kind: str, spec: Any) -> dict[str, Any]:
        if kind == "file.read":
            return await asyncio.to_thread(_read, Path(spec.path), spec.max_bytes)
        if kind == "file.diff":
            return await asyncio.to_thread(_diff, Path(spec.path), spec.content)
        if kind == "file.apply":
            return await asyncio.to_thread(_apply, spec)
        if kind == "tool.run":
            return await self._tool(spec)
        raise ValueError(f"unknown action {kind}")

    async def _tool(self, spec: wire.ToolRun) -> dict[str, Any]:
        folder = self.settings.tools_dir
        path = (folder / spec.name) if folder else None
        if (
            path is None
            or not spec.name.replace("_", "").replace("-", "").isalnum()
            or not os.access(path, os.X_OK)
        ):
            raise ValueError(f"no tool named {spec.name!r} on this node (tools_dir: {folder})")
        proc = await asyncio.create_subprocess_exec(
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(json.dumps(spec.args).encode()), spec.timeout_s
            )
        except TimeoutError:
            proc.kill()
            raise
        return {
            "exit_code": proc.returncode,
            "stdout": out.decode(errors="replace")[: self.max_output],
            "stderr": err.decode(errors="replace")[: self.max_output],
        }


def _diff(p: Path, content: str) -> dict[str, Any]:
    old = p.read_text(errors="replace") if p.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            content.splitlines(keepends=True),
            fromfile=str(p),
            tofile=f"{p} (proposed)",
        )
    )
    return {"path": str(p), "diff": diff, "changed": bool(diff), "exists": p.exists()}


def _read(p: Path, n: int) -> dict[str, Any]:
    whole = p.read_bytes()
    return {
        "path": str(p),
        "content_b64": base64.b64encode(whole[:n]).decode(),
        "size": len(whole),
        "truncated": len(whole) > n,
        "sha256": hashlib.sha256(whole).hexdigest(),
    }


def _apply(spec: wire.FileApply) -> dict[str, Any]:
    """Atomic write with a backup of the previous content; ``if_sha256`` must match what is there."""
    p = Path(spec.path)
    data = base64.b64decode(spec.content) if spec.encoding == "base64" else spec.content.encode()
    current = p.read_bytes() if p.exists() else None
    if spec.if_sha256 is not None:
        have = hashlib.sha256(current).hexdigest() if current is not None else ""
        if have != spec.if_sha256:
            raise ValueError(
                f"{p} changed since it was read (sha256 {have[:12] or 'absent'} ≠ "
                f"{spec.if_sha256[:12] or 'absent'}): read it again and re-plan"
            )
    backup = None
    if current is not None:
        backup = f"{p}.fazai-bak.{time.strftime('%Y%m%dT%H%M%S')}"
        shutil.copy2(p, backup)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.fazai-tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, spec.mode)
    os.replace(tmp, p)
    return {"path": str(p), "backup": backup, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
