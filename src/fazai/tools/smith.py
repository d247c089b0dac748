"""``tool_spec``: the model writes a tool for a spec; FazAI validates it and registers it.

Flow for one request:

1. The primary provider is asked for the module (the prompt states the interface and the spec).
2. The code is saved under ``<tools_dir>/_generated/<session>/<name>.py`` and validated:
   it parses and has a literal ``SPEC`` and ``def run(args, ctx)`` (read without executing it); it
   imports in a subprocess; its declared tests pass in the sandbox (bubblewrap when present: no
   network, read-only root, private ``/tmp``); every step within a time limit.
3. On failure the errors go back to the same model for one repair.
4. If the repair fails too (or the primary provider errors), the fallback provider gets the
   conversation so far for one last attempt.

A tool that passes is recorded as validated (bound to its SHA-256) and offered to its session.
One that never passes is kept as ``<name>.py.rejected`` with its errors, for the operator.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fazai.models.base import Message, Provider, ProviderError, SessionParams, collect
from fazai.tools.registry import ToolRegistry
from fazai.tools.runner import run_child
from fazai.tools.sandbox import SandboxUnavailable
from fazai.tools.spec import ToolSpec, ToolSpecError, read_spec

ProgressCallback = Callable[[str], Awaitable[None] | None]

SYSTEM_PROMPT = """You write one Python 3.11 module: a FazAI tool. Answer with the complete module \
in a single ```python code block and nothing else.

The module must define, at module level:
1. SPEC = {...}: a plain dict literal (no variables, no calls) with keys
   "name", "description", "inputs" (a JSON Schema of type object), "risk" and "tests".
   "risk" is "read_only" if the tool only reads, "changes_state" if it changes the machine,
   "destructive" if it deletes data or can cut access. FazAI derives the real class from the code:
   subprocess, os.system, exec/eval, getattr, __import__, sockets or unknown modules make a tool
   opaque (always asked); a tool that only reads with the standard library runs without asking.
   "tests" is a list of {"args": {...}, "expect": {...}}: the result must contain every key/value of
   "expect". Use {"args": {...}, "expect_error": "text"} for an expected error.
2. def run(args: dict, ctx) -> dict: does the work and returns a JSON-serialisable dict.
   - call ctx.log("...") for everything it reads or changes, as it happens;
   - be idempotent: running it twice leaves the same state as running it once;
   - raise an exception with a clear message on bad input or failure;
   - ctx.testing is True while the tests run in a sandbox with a read-only filesystem and no network;
     the working directory is then a private writable directory (ctx.tmp): tests that write files
     must use relative paths.
Use only the Python standard library."""


@dataclass(slots=True)
class ToolRequest:
    """What ``tool_spec`` asks for (the action's fields)."""

    name: str
    description: str
    inputs: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    outputs: dict[str, Any] | None = None
    tests: list[dict[str, Any]] | None = None

    def prompt(self) -> str:
        body: dict[str, Any] = {"name": self.name, "description": self.description, "inputs": self.inputs}
        if self.outputs:
            body["outputs"] = self.outputs
        if self.tests:
            body["tests"] = self.tests
        return (
            "Write the tool for this spec. Keep the name, inputs and tests exactly as given"
            + (" (add tests if none are given)" if not self.tests else "")
            + ".\n"
            + json.dumps(body, indent=2)
        )


@dataclass(slots=True)
class Validation:
    """The result of validating one candidate module."""

    ok: bool
    errors: list[str] = field(default_factory=list)
    isolation: str = "none"
    tests_passed: int = 0
    tests_failed: int = 0
    spec: ToolSpec | None = None

    def report(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "isolation": self.isolation,
            "tests_passed": self.tests_passed,
            "tests_failed": self.tests_failed,
            "tests": self.spec.tests if self.spec else [],
        }


@dataclass(slots=True)
class Attempt:
    """One generation + validation."""

    provider: str
    kind: Literal["write", "repair", "fallback"]
    ok: bool
    errors: list[str]


@dataclass(slots=True)
class ToolBuild:
    """The outcome of ``tool_spec``."""

    name: str
    ok: bool
    path: Path | None = None
    spec: ToolSpec | None = None
    validation: Validation | None = None
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None

    def to_observation(self) -> dict[str, Any]:
        """Structured observation for the model (and the ``tool_ready`` event)."""
        obs: dict[str, Any] = {"tool": self.name, "ok": self.ok}
        if self.ok and self.spec is not None and self.validation is not None:
            obs.update(
                risk=self.spec.risk,
                inputs=self.spec.inputs,
                tests_passed=self.validation.tests_passed,
                isolation=self.validation.isolation,
                path=str(self.path),
                usage=f'{{"action": "use_tool", "name": "{self.name}", "args": {{...}}}}',
            )
        if self.error:
            obs["error"] = self.error
        obs["attempts"] = [
            {"provider": a.provider, "kind": a.kind, "ok": a.ok, "errors": a.errors[:3]}
            for a in self.attempts
        ]
        return obs


def extract_code(text: str) -> str:
    """The Python module in a model's answer: the largest fenced block, or the whole text."""
    blocks = re.findall(r"```(?:python|py)?[ \t]*\n(.*?)```", text, flags=re.S)
    if blocks:
        return max(blocks, key=len).strip() + "\n"
    return text.strip() + "\n"


async def validate_tool(
    source: str,
    filename: str,
    *,
    expected_name: str,
    tests: list[dict[str, Any]] | None = None,
    timeout_s: float = 20.0,
    sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
) -> Validation:
    """Validate a candidate tool: parse, import in a subprocess, run its tests in the sandbox.

    ``tests`` (the ones the request declared) take precedence over the module's own ``SPEC`` tests,
    so a model cannot weaken the checks it was asked to pass.
    """
    try:
        spec = read_spec(source, filename)
    except ToolSpecError as e:
        return Validation(ok=False, errors=[f"parse: {e}"])
    if spec.name != expected_name:
        return Validation(ok=False, errors=[f"SPEC['name'] is {spec.name!r}, must be {expected_name!r}"])
    try:
        check = await run_child(
            "check", source, filename, timeout_s=timeout_s, sandboxed=True, sandbox_mode=sandbox_mode
        )
    except SandboxUnavailable as e:
        return Validation(ok=False, errors=[str(e)])
    if check.error or check.first("spec") is None:
        detail = check.first("error") or {}
        tb = str(detail.get("traceback") or "")[-800:]
        return Validation(
            ok=False,
            isolation=check.isolation,
            errors=[f"import: {check.error or 'no SPEC reported'}" + (f"\n{tb}" if tb else "")],
        )
    chosen = tests if tests else spec.tests
    if chosen:
        spec.tests = chosen
    run = await run_child(
        "test",
        source,
        filename,
        tests=chosen,
        timeout_s=timeout_s,
        sandboxed=True,
        sandbox_mode=sandbox_mode,
    )
    done = run.first("tests_done")
    if run.timed_out or done is None:
        err = run.error or "the test run ended without a report"
        return Validation(ok=False, isolation=run.isolation, errors=[f"tests: {err}"], spec=spec)
    failures = [
        f"test {m['i']} args={json.dumps(m.get('args'))}: {m['detail']}"
        for m in run.messages
        if m.get("t") == "test" and not m.get("ok")
    ]
    if not chosen:
        failures.append("no tests declared: add at least one test to SPEC['tests']")
    return Validation(
        ok=not failures,
        errors=failures,
        isolation=run.isolation,
        tests_passed=int(done.get("passed", 0)),
        tests_failed=int(done.get("failed", 0)),
        spec=spec,
    )


class ToolSmith:
    """Builds tools for ``tool_spec`` with a primary provider and an optional fallback."""

    def __init__(
        self,
        registry: ToolRegistry,
        provider: Provider,
        fallback: Provider | None = None,
        *,
        validate_timeout_s: float = 20.0,
        sandbox_mode: Literal["auto", "bwrap", "none"] = "auto",
        params: SessionParams | None = None,
    ):
        self.registry = registry
        self.provider = provider
        self.fallback = fallback
        self.validate_timeout_s = validate_timeout_s
        self.sandbox_mode = sandbox_mode
        self.params = params or SessionParams(temperature=0.2, max_tokens=2048)

    async def _ask(self, provider: Provider, messages: list[Message]) -> str:
        session = await provider.open_session(self.params)
        try:
            final = await collect(session.generate(messages))
        finally:
            await session.close()
        return final.text

    async def build(
        self, request: ToolRequest, session: str, on_progress: ProgressCallback | None = None
    ) -> ToolBuild:
        """Write, validate and register the tool; never raises for model or validation failures."""
        build = ToolBuild(name=request.name, ok=False)
        taken = self.registry.name_taken(request.name)
        if taken:
            build.error = (
                f"a {taken} tool named {request.name!r} already exists: "
                "use it with use_tool, or pick another name"
            )
            return build
        messages = [Message("system", SYSTEM_PROMPT), Message("user", request.prompt())]
        plan: list[tuple[Provider, Literal["write", "repair", "fallback"]]] = [
            (self.provider, "write"),
            (self.provider, "repair"),
        ]
        if self.fallback is not None:
            plan.append((self.fallback, "fallback"))
        path: Path | None = None
        last_errors: list[str] = []
        skip_primary = False
        for provider, kind in plan:
            if kind == "repair" and skip_primary:
                continue
            await _say(on_progress, f"{kind}: asking {provider.name} for tool {request.name!r}")
            try:
                answer = await self._ask(provider, messages)
            except ProviderError as e:
                build.attempts.append(Attempt(provider.name, kind, False, [f"provider error: {e}"]))
                await _say(on_progress, f"{kind}: provider {provider.name} failed: {e}")
                skip_primary = provider is self.provider
                continue
            source = extract_code(answer)
            path = self.registry.save_generated(session, request.name, source)
            result = await validate_tool(
                source,
                str(path),
                expected_name=request.name,
                tests=request.tests,
                timeout_s=self.validate_timeout_s,
                sandbox_mode=self.sandbox_mode,
            )
            build.attempts.append(Attempt(provider.name, kind, result.ok, result.errors))
            if result.ok:
                self.registry.mark_validated(
                    path, dict(result.report(), provider=provider.name, attempt=kind, session=session)
                )
                info = self.registry.get(request.name, session)
                build.ok, build.path, build.spec, build.validation = True, path, info.spec, result
                note = (
                    "" if result.isolation == "bwrap" else " (no bubblewrap: tests ran as a plain subprocess)"
                )
                await _say(
                    on_progress, f"tool {request.name!r} is valid: {result.tests_passed} test(s) passed{note}"
                )
                return build
            last_errors = result.errors
            await _say(
                on_progress,
                f"{kind}: validation failed: " + "; ".join(e.splitlines()[0] for e in result.errors),
            )
            messages += [
                Message("assistant", f"```python\n{source}```"),
                Message(
                    "user",
                    "The module failed validation:\n"
                    + "\n".join(result.errors)
                    + "\nFix it. Answer with the complete corrected module in one ```python block.",
                ),
            ]
        if path is not None and path.exists():
            self.registry.reject(path, last_errors or ["no valid module"])
        build.error = (
            "no valid tool after "
            + f"{len(build.attempts)} attempt(s): "
            + "; ".join((last_errors or [a.errors[0] for a in build.attempts if a.errors] or ["unknown"])[:3])
        )
        return build


async def _say(cb: ProgressCallback | None, text: str) -> None:
    if cb is None:
        return
    maybe = cb(text)
    if asyncio.iscoroutine(maybe):
        await maybe
