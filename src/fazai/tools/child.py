"""The process a tool runs in: ``python -m fazai.tools.child MODE``.

It reads one JSON request from stdin — ``{"source": …, "filename": …, "args": {…}}`` — so the tool's
code reaches a sandbox whose ``/tmp`` is private, and answers with JSON lines on stdout:

* ``{"t": "log", "msg": …}`` for each ``ctx.log(msg)``, flushed as it happens;
* ``check``: ``{"t": "spec", "spec": {…}}`` once the module imported;
* ``run``: ``{"t": "result", "result": {…}}`` or ``{"t": "error", "error": …, "traceback": …}``;
* ``test``: ``{"t": "test", "i": N, "ok": bool, "detail": …}`` per declared test, then
  ``{"t": "tests_done", "passed": P, "failed": F}``.

Anything the tool prints goes to stderr (stdout is the protocol), and the parent streams it too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
import types
from typing import Any, TextIO


class ToolContext:
    """What a tool's ``run(args, ctx)`` receives.

    ``ctx.log(msg)`` reports what the tool reads or changes (streamed live to the operator);
    ``ctx.testing`` is True while declared tests run (in the sandbox, with the working directory set
    to ``ctx.tmp``, a private scratch directory).
    """

    def __init__(self, out: TextIO, *, testing: bool, tmp: str):
        self._out = out
        self.testing = testing
        self.tmp = tmp

    def log(self, msg: object) -> None:
        """Stream one log line to the operator."""
        _emit(self._out, {"t": "log", "msg": str(msg)})


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, default=str) + "\n")
    out.flush()


def _load(source: str, filename: str) -> types.ModuleType:
    module = types.ModuleType("fazai_tool")
    module.__file__ = filename
    code = compile(source, filename, "exec")
    exec(code, module.__dict__)
    if not callable(getattr(module, "run", None)):
        raise TypeError("the module has no callable run(args, ctx)")
    if not isinstance(getattr(module, "SPEC", None), dict):
        raise TypeError("the module has no SPEC dict")
    return module


def _matches(expect: Any, got: Any) -> bool:
    if isinstance(expect, dict):
        return isinstance(got, dict) and all(k in got and _matches(v, got[k]) for k, v in expect.items())
    return expect == got


def _run_tests(module: types.ModuleType, tests: list[dict[str, Any]], out: TextIO, tmp: str) -> int:
    failed = 0
    for i, test in enumerate(tests):
        ctx = ToolContext(out, testing=True, tmp=tmp)
        args = test.get("args") or {}
        want_error = test.get("expect_error")
        try:
            got = module.run(args, ctx)
        except Exception as e:  # a tool's failure is the test's result, not ours
            msg = f"{type(e).__name__}: {e}"
            ok = want_error is not None and str(want_error) in msg
            detail = "raised as expected" if ok else f"raised {msg}"
        else:
            if want_error is not None:
                ok, detail = False, f"expected an error containing {want_error!r}, got {got!r}"
            elif not isinstance(got, dict):
                ok, detail = False, f"run must return a dict, got {type(got).__name__}"
            else:
                expect = test.get("expect") or {}
                ok = _matches(expect, got)
                detail = "ok" if ok else f"expected {expect!r} within the result, got {got!r}"
        failed += 0 if ok else 1
        _emit(out, {"t": "test", "i": i, "ok": ok, "args": args, "detail": detail})
    _emit(out, {"t": "tests_done", "passed": len(tests) - failed, "failed": failed})
    return failed


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 the tool or a test failed, 2 bad request)."""
    argv = sys.argv[1:] if argv is None else argv
    mode = argv[0] if argv else "run"
    # The protocol gets its own handle on the real stdout; print() inside a tool goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    try:
        request = json.loads(sys.stdin.read() or "{}")
        source, filename = request["source"], request.get("filename", "<tool>")
    except (ValueError, KeyError) as e:
        _emit(out, {"t": "error", "error": f"bad request to the tool runner: {e}"})
        return 2
    with tempfile.TemporaryDirectory(prefix="fazai-tool-") as tmp:
        try:
            module = _load(source, filename)
        except BaseException as e:
            _emit(out, {"t": "error", "error": f"import failed: {type(e).__name__}: {e}", "traceback": _tb()})
            return 1
        if mode == "check":
            _emit(out, {"t": "spec", "spec": module.SPEC})
            return 0
        if mode == "test":
            # Relative paths in declared tests land in the scratch dir, sandboxed or not.
            os.chdir(tmp)
            tests = request.get("tests")
            if tests is None:
                tests = module.SPEC.get("tests") or []
            return 1 if _run_tests(module, tests, out, tmp) else 0
        ctx = ToolContext(out, testing=False, tmp=tmp)
        try:
            result = module.run(request.get("args") or {}, ctx)
        except Exception as e:
            _emit(out, {"t": "error", "error": f"{type(e).__name__}: {e}", "traceback": _tb()})
            return 1
        if not isinstance(result, dict):
            _emit(out, {"t": "error", "error": f"run must return a dict, got {type(result).__name__}"})
            return 1
        _emit(out, {"t": "result", "result": result})
        return 0


def _tb() -> str:
    return "".join(traceback.format_exc(limit=-4))


if __name__ == "__main__":
    sys.exit(main())
