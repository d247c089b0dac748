"""Executors for ``research``, ``tool_spec`` and ``use_tool`` (the knowledge issue's actions).

Same shape as :mod:`fazai.agent.executors`: an async generator per action that yields its events as
they happen and ends with one :class:`Outcome`. Register them with
``AgentDeps(executors=tool_executors(ToolServices(registry=…)))``.

* ``research`` — the selected backends at once, within ``[research] timeout_s``; one
  ``research_result`` event; unreachable backends are listed in the observation.
* ``tool_spec`` — the session's provider writes the tool (the fallback provider, if given, gets the
  last try); progress lines are ``exec_log`` events (stream ``tool_spec``); success is a
  ``tool_ready`` event.
* ``use_tool`` — the tool's risk (derived from its code for module tools; a built-in's class plus its
  ``critical(args)``) goes through ``policy.check_risk`` (deny / ask / allow,
  exactly like a shell command); a built-in with a ``preview`` (dry run) shows its planned changes in
  the ``approval_required`` event (``preview``, and one line per change in ``summary``); then it
  runs with a time limit, its log lines streamed as
  ``exec_log`` events (streams ``log`` and ``stderr``), ending with ``exec_end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fazai.agent.executors import Executor, Outcome, Step, race_abort
from fazai.config import ResearchSettings, ToolsSettings
from fazai.knowledge.research import (
    ResearchBackend,
    SearchFn,
    build_backends,
    missing_sources,
    research,
    select_backends,
)
from fazai.models.base import Provider
from fazai.protocol import Event, ResearchAction, ToolSpecAction, UseToolAction
from fazai.tools.registry import ToolNotFound, ToolRegistry
from fazai.tools.sandbox import TOOLS_OFF, bwrap_path
from fazai.tools.smith import ToolRequest, ToolSmith
from fazai.tools.use import ToolRun, use_tool

T = TypeVar("T")

# The loop spreads Outcome.data into the observe event next to these keys.
_RESERVED = frozenset({"action", "kind", "status", "text"})


def _data(obs: dict[str, Any]) -> dict[str, Any]:
    return {("tool_" + k if k in _RESERVED else k): v for k, v in obs.items()}


@dataclass
class ToolServices:
    """What the three executors need. Unset parts are derived from the step's ``AgentDeps``."""

    registry: ToolRegistry
    research: ResearchSettings = field(default_factory=ResearchSettings)
    tools: ToolsSettings = field(default_factory=ToolsSettings)
    # Research backends by name; None = built from ``research`` (+ ``kb_search`` or the loop's
    # knowledge hook for kb).
    backends: dict[str, ResearchBackend] | None = None
    # The KB's search as ``(query, k) -> hits`` (e.g. ``KBBackend.from_facade(kb)._search``); None =
    # the loop's ``AgentDeps.knowledge`` hook.
    kb_search: SearchFn | None = None
    # The second provider for tool_spec's last attempt (the session's provider writes first).
    fallback: Provider | None = None
    # Extra attributes for built-in tools' ctx (e.g. an OPNsense client).
    extra: dict[str, Any] = field(default_factory=dict)

    def catalog(self) -> list[dict[str, Any]]:
        """Built-in and stable tools, compact, for the goal's context (``AgentDeps(tools=…)``).

        ``args`` lists the input names, required ones marked ``*``."""
        out = []
        for t in self.registry.available():
            props = t.spec.inputs.get("properties") or {}
            required = set(t.spec.inputs.get("required") or [])
            args = [k + ("*" if k in required else "") for k in props]
            out.append({"name": t.name, "risk": t.risk, "description": t.spec.description, "args": args})
        return out


async def _stream(
    step: Step, work: Callable[[Callable[[Event], None]], Awaitable[T]]
) -> AsyncIterator[Event | tuple[str, T | None]]:
    """Run ``work(emit)``; yield the events it emits as they come, then ``("done"|"aborted", result)``."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    task = asyncio.ensure_future(work(queue.put_nowait))
    stopper = asyncio.ensure_future(step.abort.wait())
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            if stopper.done() and not task.done():
                task.cancel()  # the runners kill their process groups when cancelled
                with contextlib.suppress(BaseException):
                    await task
                yield ("aborted", None)
                return
        yield ("done", task.result())
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _preview(
    preview: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], args: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """A built-in tool's dry run, or ``{"error": …}`` (it must never take the loop down)."""
    try:
        out = await asyncio.wait_for(preview(args), timeout=timeout_s)
    except TimeoutError:
        return {"error": f"no answer within {timeout_s:g}s"}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return out if isinstance(out, dict) else {"error": f"preview returned {type(out).__name__}, not a dict"}


def tool_executors(services: ToolServices) -> dict[str, Executor]:
    """The ``research``, ``tool_spec`` and ``use_tool`` executors bound to ``services``."""

    async def execute_research(action: ResearchAction, step: Step) -> AsyncIterator[Event | Outcome]:
        backends = services.backends
        if backends is None:
            hook = step.deps.knowledge
            kb_search = services.kb_search
            if kb_search is None and hook is not None:
                kb_search = lambda q, k: hook.search(q, limit=k)  # noqa: E731
            backends = build_backends(services.research, kb_search=kb_search)
        chosen = select_backends(backends, action.sources)
        budget = min(services.research.timeout_s, max(step.remaining(), 0.1))
        aborted, result = await race_abort(
            research(action.query, chosen, k=services.research.max_results, timeout_s=budget), step.abort
        )
        if aborted or result is None:
            yield Outcome(None, status="aborted", stop="aborted", during="research")
            return
        result.unavailable += missing_sources(backends, action.sources)
        data = result.to_dict()
        yield step.event("research_result", action=step.action_id, **data)
        yield Outcome(
            result.as_text(),
            status="ok" if result.hits else "empty",
            data={"hits": len(result.hits), "unavailable": result.unavailable},
        )

    async def execute_tool_spec(action: ToolSpecAction, step: Step) -> AsyncIterator[Event | Outcome]:
        aid = step.action_id
        if services.tools.sandbox != "none" and bwrap_path() is None:
            # No sandbox, no model-written code: validation would import and run it on this machine.
            yield Outcome(f"tool_spec refused: {TOOLS_OFF}", status="error", data={"tools": "off"})
            return
        smith = ToolSmith(
            services.registry,
            step.deps.provider,
            services.fallback,
            validate_timeout_s=services.tools.validate_timeout_s,
            sandbox_mode=services.tools.sandbox,
        )
        request = ToolRequest(
            name=action.name,
            description=action.description,
            inputs=action.inputs,
            outputs=action.outputs,
            tests=action.tests,
        )

        async def work(emit: Callable[[Event], None]) -> Any:
            return await smith.build(
                request,
                step.session_id,
                on_progress=lambda text: emit(
                    step.event("exec_log", action=aid, stream="tool_spec", text=text)
                ),
            )

        build = None
        async for item in _stream(step, work):
            if isinstance(item, tuple):
                if item[0] == "aborted":
                    yield Outcome(None, status="aborted", stop="aborted", during="tool_spec")
                    return
                build = item[1]
            else:
                yield item
        assert build is not None
        obs = build.to_observation()
        if build.ok:
            yield step.event("tool_ready", action=aid, **{k: v for k, v in obs.items() if k != "attempts"})
            text = (
                f"tool {build.name!r} is ready (risk {obs['risk']}, {obs['tests_passed']} test(s) passed). "
                f'Run it with {{"action": "use_tool", "name": "{build.name}", "args": {{...}}}}; '
                f"inputs: {json.dumps(obs['inputs'])}"
            )
            yield Outcome(text, data=_data(obs))
        else:
            yield Outcome(f"tool_spec failed: {build.error}", status="error", data=_data(obs))

    async def execute_use_tool(action: UseToolAction, step: Step) -> AsyncIterator[Event | Outcome]:
        aid, deps = step.action_id, step.deps
        try:
            info = services.registry.get(action.name, step.session_id)
        except ToolNotFound as e:
            yield Outcome(str(e), status="error")
            return
        summary = f"use_tool {action.name} {json.dumps(action.args, sort_keys=True)}"
        critical = info.builtin.critical(action.args) if info.builtin and info.builtin.critical else None
        if critical:
            decision = deps.policy.check_risk(info.risk, summary, critical=True, why=critical)
        else:
            decision = deps.policy.check_risk(info.risk, summary)
        risk = str(getattr(decision.risk, "value", decision.risk))
        reasons = list(decision.reasons)
        if decision.verdict == "deny":
            yield Outcome(
                f"FORBIDDEN by the safety policy ({risk}: {'; '.join(reasons) or 'forbidden'}). "
                "The tool did not run.",
                status="forbidden",
                data={"risk": risk, "reasons": reasons, "tool": action.name},
            )
            return
        if decision.verdict != "allow":
            extra: dict[str, Any] = {}
            builtin = info.builtin
            if builtin is not None and builtin.preview is not None:
                # Plan first: the operator approves the dry run's diff, not just the arguments.
                budget = min(services.tools.run_timeout_s, max(step.remaining(), 0.1))
                aborted, planned = await race_abort(
                    _preview(builtin.preview, action.args, budget), step.abort
                )
                if aborted or planned is None:
                    yield Outcome(None, status="aborted", stop="aborted", during="use_tool")
                    return
                if "error" in planned:
                    yield Outcome(
                        f"the dry run of {action.name} failed: {planned['error']}. Nothing was changed "
                        "and the operator was not asked; fix the arguments or choose another way.",
                        status="failed",
                        data={"risk": risk, "tool": action.name, "preview_error": planned["error"]},
                    )
                    return
                extra["preview"] = planned
                lines = [str(x) for x in planned.get("lines") or []]
                if lines:
                    summary += "\n" + "\n".join("  " + x for x in lines)
            extra["operator_only"] = bool(getattr(decision, "needs_operator", False))
            yield step.event(
                "approval_required", action=aid, summary=summary, risk=risk, reasons=reasons, **extra
            )
            aborted, approved = await race_abort(
                step.interaction.approve(aid, summary, risk, reasons), step.abort
            )
            if aborted:
                yield Outcome(None, status="aborted", stop="aborted", during="approval")
                return
            yield step.event("reply", action=aid, approved=bool(approved))
            if not approved:
                yield Outcome(
                    "the operator DENIED this tool run; it did not run. Do not retry it: "
                    "choose another way, ask, or finish with done.",
                    status="denied",
                    data={"risk": risk, "tool": action.name},
                )
                return
        timeout = min(
            services.tools.run_timeout_s, deps.settings.action_timeout_s, max(step.remaining(), 0.1)
        )

        async def work(emit: Callable[[Event], None]) -> ToolRun:
            return await use_tool(
                services.registry,
                action.name,
                action.args,
                session=step.session_id,
                timeout_s=timeout,
                on_log=lambda stream, text: emit(
                    step.event("exec_log", action=aid, stream=stream, text=text)
                ),
                extra=services.extra,
                sandbox_mode=services.tools.sandbox,
            )

        run: ToolRun | None = None
        async for item in _stream(step, work):
            if isinstance(item, tuple):
                if item[0] == "aborted":
                    yield step.event("exec_end", action=aid, exit_code=None, cancelled=True, timed_out=False)
                    yield Outcome(None, status="aborted", stop="aborted", during="use_tool")
                    return
                run = item[1]
            else:
                yield item
        assert run is not None
        yield step.event(
            "exec_end",
            action=aid,
            exit_code=0 if run.ok else 1,
            duration_s=round(run.duration_s, 3),
            timed_out=run.timed_out,
            cancelled=False,
        )
        obs = run.to_observation(services.tools.max_output_chars)
        status = "ok" if run.ok else ("timeout" if run.timed_out else "failed")
        yield Outcome(
            f"action {aid} (use_tool {action.name}): " + json.dumps(obs, default=str),
            status=status,
            data=_data(obs),
        )

    return {"research": execute_research, "tool_spec": execute_tool_spec, "use_tool": execute_use_tool}
