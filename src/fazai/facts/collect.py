"""Collect system facts on a target, in parallel, within a time budget; render them for the model."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field

from fazai.facts.collectors import COLLECTORS, Collector
from fazai.targets.local import shell_argv, shell_env


class ExecResultLike(Protocol):
    """What a target's ``run`` returns (``fazai.targets``' ``ExecResult`` has these fields)."""

    exit_code: int
    stdout: str | bytes
    stderr: str | bytes


class Target(Protocol):
    """Anything that runs a shell command: ``run(command, timeout=...)``, sync or async."""

    def run(self, command: str, timeout: float | None = ...) -> Any:
        """Run ``command`` in a shell and return an ExecResult-like object."""
        ...


@dataclass
class ExecResult:
    """Result of :class:`LocalRunner.run`."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float = 0.0
    timed_out: bool = False


class LocalRunner:
    """Runs commands on this machine, collecting output at the end (facts need no streaming)."""

    name = "local"

    async def run(self, command: str, timeout: float | None = 30.0) -> ExecResult:  # noqa: ASYNC109
        """Run ``command``; on timeout the whole process group is killed and ``timed_out`` is set."""
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *shell_argv(command),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills pipelines too
            env=shell_env({"LC_ALL": "C"}),
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return ExecResult(-9, "", f"timed out after {timeout}s", time.monotonic() - t0, True)
        except asyncio.CancelledError:
            _kill_group(proc.pid)  # the caller gave up (budget spent): leave nothing running
            raise
        return ExecResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            time.monotonic() - t0,
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Facts(BaseModel):
    """What FazAI knows about a machine at session start. Missing facts are listed in ``errors``."""

    target: str = "local"
    collected_at: float = Field(default_factory=time.time)
    duration_s: float = 0.0
    os: dict[str, str] | None = None
    kernel: dict[str, str] | None = None
    uptime: float | None = None
    cpu: dict[str, Any] | None = None
    memory: dict[str, int] | None = None
    disks: list[dict[str, Any]] | None = None
    ports: list[dict[str, Any]] | None = None
    failed_units: list[dict[str, str]] | None = None
    journal_errors: list[dict[str, Any]] | None = None
    services: list[dict[str, str]] | None = None
    errors: dict[str, str] = Field(default_factory=dict)

    @property
    def distro(self) -> str | None:
        """``debian-12``-style distro key (matches the KB's ``os`` filter), or None."""
        if not self.os:
            return None
        v = self.os.get("version_id")
        return f"{self.os['id']}-{v}" if v else self.os["id"]

    def as_prompt(self, max_chars: int = 1800) -> str:
        """A compact text block for the model's context, cut at ``max_chars`` with the cut stated."""
        lines = [f"System facts ({self.target}):"]
        if self.os or self.kernel:
            osname = (self.os or {}).get("pretty_name") or self.distro or "?"
            k = self.kernel or {}
            up = f", up {_human_duration(self.uptime)}" if self.uptime is not None else ""
            lines.append(
                f"- OS: {osname}; kernel {k.get('release', '?')} {k.get('machine', '')}{up}".rstrip()
            )
        if self.cpu:
            c = self.cpu
            lines.append(f"- CPU: {c['cores']} cores; load {c['load1']} {c['load5']} {c['load15']}")
        if self.memory:
            m = self.memory
            lines.append(
                f"- Memory: {_gib(m['available'])} available of {_gib(m['total'])}; "
                f"swap used {_gib(m['swap_total'] - m['swap_free'])} of {_gib(m['swap_total'])}"
            )
        if self.disks is not None:
            shown = sorted(self.disks, key=lambda d: -d["use_pct"])[:6]
            parts = [f"{d['mount']} {d['use_pct']}% of {_gib(d['size'])} ({d['fstype']})" for d in shown]
            lines.append("- Disks: " + ("; ".join(parts) or "none listed"))
        if self.ports is not None:
            ps = [
                f"{p['proto']}/{p['port']}" + (f" {p['process']}" if p["process"] else "") for p in self.ports
            ]
            more = f" (+{len(ps) - 20} more)" if len(ps) > 20 else ""
            lines.append("- Listening: " + (", ".join(ps[:20]) + more if ps else "nothing"))
        if self.failed_units is not None:
            fu = [u["unit"] for u in self.failed_units]
            lines.append("- Failed units: " + (", ".join(fu) if fu else "none"))
        if self.services is not None:
            sv = [f"{s['unit']} {s['active']}" for s in self.services]
            lines.append("- Key services: " + (", ".join(sv) if sv else "none of the known ones installed"))
        if self.journal_errors is not None:
            je = self.journal_errors
            if je:
                last = je[-1]
                lines.append(
                    f"- Journal errors this boot (last {len(je)}): latest {last['unit']}: {last['message']}"
                )
            else:
                lines.append("- Journal errors this boot: none")
        if self.errors:
            lines.append(
                "- Not collected: " + "; ".join(f"{k} ({v})" for k, v in sorted(self.errors.items()))
            )
        text = "\n".join(lines)
        if len(text) > max_chars:
            text = text[: max_chars - 20].rstrip() + "\n… (facts truncated)"
        return text


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _human_duration(s: float) -> str:
    d, rem = divmod(int(s), 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    return f"{d}d {h}h" if d else (f"{h}h {m}m" if h else f"{m}m")


def _text(x: str | bytes | None) -> str:
    if x is None:
        return ""
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else x


async def _run_on(target: Any, command: str, timeout: float) -> Any:  # noqa: ASYNC109
    if inspect.iscoroutinefunction(target.run):
        return await target.run(command, timeout=timeout)
    res = await asyncio.to_thread(target.run, command, timeout=timeout)
    return await res if inspect.isawaitable(res) else res


# The parsers read the C locale's output (dates, decimal points, column names), whatever the
# target's own locale is: a remote node's sshd passes the operator's LANG through.
_C_LOCALE = "export LC_ALL=C LANG=C; "


async def _collect_one(target: Any, c: Collector, timeout: float) -> tuple[str, Any, str | None]:  # noqa: ASYNC109
    try:
        res = await _run_on(target, _C_LOCALE + c.command, timeout)
    except Exception as e:  # a broken target must not break the others
        return c.name, None, f"{type(e).__name__}: {e}"
    out, err = _text(res.stdout), _text(res.stderr)
    if getattr(res, "timed_out", False):
        return c.name, None, f"timed out after {timeout:.1f}s"
    lines = err.strip().splitlines()
    if any(mk in err for mk in c.fail_markers):
        return c.name, None, lines[0][:200]
    if res.exit_code not in c.ok_codes:
        return c.name, None, (lines[-1] if lines else f"exit code {res.exit_code}")[:200]
    try:
        return c.name, c.parse(out), None
    except (ValueError, IndexError, KeyError) as e:
        return c.name, None, f"unexpected output ({e})"


async def collect_facts(
    target: Target | None = None,
    budget_s: float = 3.0,
    collectors: Sequence[Collector] = COLLECTORS,
    *,
    target_name: str | None = None,
) -> Facts:
    """Run every collector on ``target`` (default: this machine) in parallel within ``budget_s``.

    ``target`` is anything with ``run(command, timeout=...)``: a ``fazai.targets`` target (local,
    ssh, agent) or :class:`LocalRunner`. Commands run in the C locale.

    Collectors that fail or do not finish in time are named in ``Facts.errors`` with the reason; the
    others are still returned. Never raises for a failing command.
    """
    tgt = target if target is not None else LocalRunner()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(_collect_one(tgt, c, budget_s)) for c in collectors]
    _, pending = await asyncio.wait(tasks, timeout=budget_s + 0.5)
    for t in pending:
        t.cancel()
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for c, t in zip(collectors, tasks, strict=True):
        if t in pending:
            errors[c.name] = f"timed out after {budget_s:.1f}s"
            continue
        name, value, error = t.result()
        if error:
            errors[name] = error
        else:
            values[name] = value
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    name = target_name or getattr(tgt, "name", None) or "local"
    known = {k: v for k, v in values.items() if k in Facts.model_fields}
    return Facts(target=str(name), duration_s=round(time.monotonic() - t0, 3), errors=errors, **known)
