"""Tools made on demand: tool_spec → validation → repair/fallback → registry → use_tool."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from fazai.models.scripted import ScriptedError, ScriptedProvider
from fazai.tools.registry import BuiltinTool, ToolNotFound, ToolRegistry
from fazai.tools.sandbox import bwrap_path, run_streaming
from fazai.tools.smith import ToolRequest, ToolSmith, extract_code, validate_tool
from fazai.tools.spec import ToolSpecError, check_args, read_spec, risk_floor
from fazai.tools.use import tool_risk, use_tool

HAS_BWRAP = bwrap_path() is not None
needs_bwrap = pytest.mark.skipif(not HAS_BWRAP, reason="bubblewrap is not installed (scripts/test-setup.sh)")

MARKER_SPEC = {
    "name": "write_marker",
    "description": "Write a text into a file, only if it differs",
    "inputs": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "text": {"type": "string"}},
        "required": ["path", "text"],
    },
    "risk": "changes_state",
    "tests": [
        {"args": {"path": "m.txt", "text": "hi"}, "expect": {"changed": True}},
        {"args": {"path": "m.txt", "text": "hi"}, "expect": {"changed": False}},
    ],
}

# A first draft with a bug: it reports "changed" even when nothing changed (not idempotent-aware).
BAD_MARKER = f"""
import os
SPEC = {MARKER_SPEC!r}

def run(args, ctx):
    with open(args["path"], "w") as f:
        f.write(args["text"])
    ctx.log("wrote " + args["path"])
    return {{"changed": True}}
"""

GOOD_MARKER = f"""
import os
SPEC = {MARKER_SPEC!r}

def run(args, ctx):
    path, text = args["path"], args["text"]
    if os.path.exists(path) and open(path).read() == text:
        ctx.log(path + " already has the text")
        return {{"changed": False}}
    ctx.log("writing " + path)
    with open(path, "w") as f:
        f.write(text)
    ctx.log("wrote " + path)
    return {{"changed": True}}
"""


def answer(code: str) -> str:
    return f"Here is the tool.\n```python\n{code.strip()}\n```\n"


REQUEST = ToolRequest(
    name="write_marker",
    description=MARKER_SPEC["description"],
    inputs=MARKER_SPEC["inputs"],
    tests=MARKER_SPEC["tests"],
)


def write_tool(directory: Path, name: str, body: str, *, spec: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = spec or {
        "name": name,
        "description": f"test tool {name}",
        "inputs": {"type": "object", "properties": {}},
        "risk": "read_only",
        "tests": [],
    }
    path = directory / f"{name}.py"
    path.write_text(f"SPEC = {spec!r}\n\n" + textwrap.dedent(body))
    return path


async def test_tool_spec_fails_validation_is_repaired_then_use_tool_streams_logs(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    provider = ScriptedProvider([answer(BAD_MARKER), answer(GOOD_MARKER)])
    progress: list[str] = []
    build = await ToolSmith(reg, provider, validate_timeout_s=30).build(
        REQUEST, "s_1", on_progress=progress.append
    )

    assert build.ok, build.error
    assert [(a.kind, a.ok) for a in build.attempts] == [("write", False), ("repair", True)]
    assert "test 1" in build.attempts[0].errors[0] and "changed" in build.attempts[0].errors[0]
    assert any("validation failed" in p for p in progress)
    assert build.path == tmp_path / "tools" / "_generated" / "s_1" / "write_marker.py"
    assert build.validation is not None and build.validation.tests_passed == 2
    assert build.validation.isolation == ("bwrap" if HAS_BWRAP else "none")
    # Offered to its own session only.
    assert [t.name for t in reg.available("s_1")] == ["write_marker"]
    assert reg.available("s_2") == []
    assert tool_risk(reg, "write_marker", "s_1") == "changes_state"

    target = tmp_path / "marker.txt"
    logs: list[tuple[str, str]] = []
    run = await use_tool(
        reg,
        "write_marker",
        {"path": str(target), "text": "hello"},
        session="s_1",
        timeout_s=30,
        on_log=lambda stream, text: logs.append((stream, text)),
    )
    assert run.ok and run.result == {"changed": True}
    assert target.read_text() == "hello"
    assert logs == [("log", f"writing {target}"), ("log", f"wrote {target}")]
    again = await use_tool(
        reg, "write_marker", {"path": str(target), "text": "hello"}, session="s_1", timeout_s=30
    )
    assert again.ok and again.result == {"changed": False}  # idempotent


async def test_use_tool_streams_log_lines_while_the_tool_runs(tmp_path: Path):
    # The tool waits for a file that only the log callback creates: it can only finish if the
    # first log line reached us while it was still running.
    go = tmp_path / "go"
    write_tool(
        tmp_path / "tools" / "stable",
        "waiter",
        f"""
        import os, time
        def run(args, ctx):
            ctx.log("waiting for go")
            for _ in range(2000):
                if os.path.exists({str(go)!r}):
                    ctx.log("got go")
                    return {{"ok": True}}
                time.sleep(0.005)
            raise RuntimeError("log line was not streamed live")
        """,
    )
    reg = ToolRegistry(tmp_path / "tools")
    seen: list[str] = []

    def on_log(stream: str, text: str) -> None:
        seen.append(text)
        if text == "waiting for go":
            go.touch()

    run = await use_tool(reg, "waiter", {}, timeout_s=30, on_log=on_log)
    assert run.ok, run.error
    assert seen == ["waiting for go", "got go"]


async def test_hanging_tool_is_killed_at_its_timeout_with_its_children(tmp_path: Path):
    write_tool(
        tmp_path / "tools" / "stable",
        "hang",
        """
        import subprocess, time
        def run(args, ctx):
            child = subprocess.Popen(["sleep", "317.25"])
            ctx.log(f"child {child.pid}")
            time.sleep(300)
            return {}
        """,
    )
    reg = ToolRegistry(tmp_path / "tools")
    run = await use_tool(reg, "hang", {}, timeout_s=1.5)
    assert not run.ok and run.timed_out
    assert "timed out" in (run.error or "")
    assert run.logs and run.logs[0].startswith("child ")
    # The tool runs in its own pid namespace (the pid it logs is not ours): look for the grandchild by its
    # unique command line. The whole process group was killed: it is gone (or a zombie being reaped).
    await asyncio.sleep(0.5)
    alive = []
    for proc in Path("/proc").iterdir():  # noqa: ASYNC240
        try:
            if (proc / "cmdline").read_bytes() == b"sleep\x00317.25\x00":
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    alive.append(proc.name)
        except OSError:
            continue
    assert alive == []


async def test_fallback_provider_gets_the_last_attempt(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    primary = ScriptedProvider([answer(BAD_MARKER), "no code at all, sorry"], name="primary")
    fallback = ScriptedProvider([answer(GOOD_MARKER)], name="fallback")
    build = await ToolSmith(reg, primary, fallback).build(REQUEST, "s_1")
    assert build.ok, build.error
    assert [(a.provider, a.kind, a.ok) for a in build.attempts] == [
        ("primary", "write", False),
        ("primary", "repair", False),
        ("fallback", "fallback", True),
    ]
    assert build.attempts[1].errors[0].startswith("parse:")


async def test_primary_provider_error_goes_straight_to_fallback(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    primary = ScriptedProvider([ScriptedError("upstream 503")], name="primary")
    fallback = ScriptedProvider([answer(GOOD_MARKER)], name="fallback")
    build = await ToolSmith(reg, primary, fallback).build(REQUEST, "s_1")
    assert build.ok
    assert [(a.kind, a.ok) for a in build.attempts] == [("write", False), ("fallback", True)]
    assert "upstream 503" in build.attempts[0].errors[0]


async def test_never_valid_is_rejected_and_not_offered(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    build = await ToolSmith(reg, ScriptedProvider([answer(BAD_MARKER), answer(BAD_MARKER)])).build(
        REQUEST, "s_1"
    )
    assert not build.ok and "no valid tool after 2 attempt(s)" in (build.error or "")
    d = tmp_path / "tools" / "_generated" / "s_1"
    assert (d / "write_marker.py.rejected").exists() and (d / "write_marker.errors.txt").exists()
    assert reg.available("s_1") == []
    with pytest.raises(ToolNotFound, match="create it with tool_spec"):
        reg.get("write_marker", "s_1")


async def test_tests_from_the_request_override_weaker_module_tests(tmp_path: Path):
    # The module declares a trivially passing test; the request's tests still apply.
    weak = BAD_MARKER.replace(repr(MARKER_SPEC), repr({**MARKER_SPEC, "tests": []}))
    v = await validate_tool(weak, "x.py", expected_name="write_marker", tests=MARKER_SPEC["tests"])
    assert not v.ok and v.tests_failed == 1


async def test_validation_errors_name_the_step():
    v = await validate_tool("def run(:\n", "x.py", expected_name="t")
    assert not v.ok and v.errors[0].startswith("parse: syntax error at line 1")
    src = (
        'import no_such_module_zz\nSPEC = {"name": "t", "description": "d"}\ndef run(a, c):\n    return {}\n'
    )
    v = await validate_tool(src, "x.py", expected_name="t")
    assert not v.ok and v.errors[0].startswith("import: import failed: ModuleNotFoundError")
    src = 'SPEC = {"name": "t", "description": "d"}\ndef run(args, ctx):\n    return {}\n'
    v = await validate_tool(src, "x.py", expected_name="t")
    assert not v.ok and "no tests declared" in v.errors[0]
    v = await validate_tool(src, "x.py", expected_name="other")
    assert v.errors == ["SPEC['name'] is 't', must be 'other'"]


async def test_validation_hang_is_killed(tmp_path: Path):
    src = textwrap.dedent(
        """
        import time
        SPEC = {"name": "slow", "description": "d", "tests": [{"args": {}, "expect": {}}]}
        def run(args, ctx):
            time.sleep(300)
        """
    )
    v = await validate_tool(src, "x.py", expected_name="slow", timeout_s=1.5)
    assert not v.ok and "timed out" in v.errors[0]


@pytest.fixture
def outside_tmp():
    """A real directory outside /tmp (the sandbox hides /tmp behind its own tmpfs)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="fazai-test-", dir="/var/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_bwrap
async def test_sandbox_has_no_network_and_a_read_only_root(outside_tmp: Path):
    tmp_path = outside_tmp
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = textwrap.dedent(
            f"""
            import socket, pathlib
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                print("net: connected")
            except OSError as e:
                print("net: refused", type(e).__name__)
            try:
                pathlib.Path({str(tmp_path / "escape")!r}).write_text("x")
                print("root: written")
            except OSError as e:
                print("root: read-only", e.errno)
            pathlib.Path("/tmp/scratch").write_text("x")
            print("tmp: writable")
            """
        )
        res = await run_streaming([sys.executable, "-c", probe], timeout_s=20, sandboxed=True)
    assert res.isolation == "bwrap"
    assert res.stdout[0].startswith("net: refused"), res.stdout
    assert res.stdout[1] == "root: read-only 30", res.stdout  # EROFS
    assert res.stdout[2] == "tmp: writable"
    assert not (tmp_path / "escape").exists()


@needs_bwrap
async def test_tool_whose_test_writes_outside_tmp_fails_validation(outside_tmp: Path):
    target = outside_tmp / "should_not_exist"
    spec = {
        **MARKER_SPEC,
        "tests": [{"args": {"path": str(target), "text": "x"}, "expect": {"changed": True}}],
    }
    src = GOOD_MARKER.replace(repr(MARKER_SPEC), repr(spec))
    v = await validate_tool(src, "x.py", expected_name="write_marker")
    assert not v.ok and "Read-only file system" in v.errors[0]
    assert not target.exists()


async def test_unsandboxed_mode_says_so(tmp_path: Path):
    v = await validate_tool(GOOD_MARKER, "x.py", expected_name="write_marker", sandbox_mode="none")
    assert v.ok and v.isolation == "none"


def test_read_spec_without_running_code():
    spec = read_spec(
        'SPEC = {"name": "a_b", "description": "d", "risk": "weird"}\ndef run(a, c):\n    return {}\n'
    )
    assert spec.risk == "changes_state"  # unknown risk means changes_state
    with pytest.raises(ToolSpecError, match="plain literal"):
        read_spec('import os\nSPEC = {"name": os.name, "description": "d"}\ndef run(a, c):\n    return {}\n')
    with pytest.raises(ToolSpecError, match="no module-level def run"):
        read_spec('SPEC = {"name": "a", "description": "d"}\n')
    with pytest.raises(ToolSpecError, match="exactly two arguments"):
        read_spec('SPEC = {"name": "a", "description": "d"}\ndef run(a):\n    return {}\n')


def test_risk_floor_catches_under_declared_tools():
    assert risk_floor("def run(a, c):\n    return {'x': open('/etc/hostname').read()}\n") == (
        "read_only",
        None,
    )
    assert risk_floor("import os\ndef run(a, c):\n    os.remove(a['p'])\n")[0] == "destructive"
    assert risk_floor("def run(a, c):\n    open(a['p'], 'w')\n") == (
        "changes_state",
        "opens a file for writing",
    )


async def test_generated_read_only_tool_with_writes_needs_approval(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    spec = {**MARKER_SPEC, "risk": "read_only"}
    build = await ToolSmith(
        reg, ScriptedProvider([answer(GOOD_MARKER.replace(repr(MARKER_SPEC), repr(spec)))])
    ).build(REQUEST, "s_1")
    assert build.ok
    info = reg.get("write_marker", "s_1")
    assert info.risk == "changes_state"
    assert "opens a file for writing" in (info.validation or {}).get("risk_raised", "")


async def test_changed_generated_file_is_no_longer_offered(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    build = await ToolSmith(reg, ScriptedProvider([answer(GOOD_MARKER)])).build(REQUEST, "s_1")
    assert build.ok and build.path is not None
    build.path.write_text(build.path.read_text() + "\n# edited\n")
    assert reg.available("s_1") == []


async def test_promote_list_and_remove(tmp_path: Path):
    reg = ToolRegistry(tmp_path / "tools")
    await ToolSmith(reg, ScriptedProvider([answer(GOOD_MARKER)])).build(REQUEST, "s_1")
    dest = reg.promote("write_marker")
    assert dest == tmp_path / "tools" / "stable" / "write_marker.py"
    assert json.loads(dest.with_suffix(".json").read_text())["tests_passed"] == 2
    assert [t.kind for t in reg.available("s_9")] == ["stable"]  # offered to every session
    with pytest.raises(FileExistsError):
        reg.promote("write_marker")
    # A stable name cannot be shadowed by a new generated tool.
    build = await ToolSmith(reg, ScriptedProvider([])).build(REQUEST, "s_2")
    assert not build.ok and "stable tool named 'write_marker' already exists" in (build.error or "")
    assert reg.remove("write_marker") == [dest]
    assert reg.remove("write_marker", kind="generated")[0].name == "write_marker.py"
    assert reg.all() == []


async def test_builtin_tool_runs_in_process_with_logs_and_arg_checks(tmp_path: Path):
    async def run(args: dict, ctx) -> dict:
        await ctx.log(f"reading alias {args['alias']} via {ctx.client}")
        return {"entries": 3}

    tool = BuiltinTool(
        name="opn_alias_count",
        description="Count entries of an OPNsense alias",
        inputs={"type": "object", "properties": {"alias": {"type": "string"}}, "required": ["alias"]},
        risk="read_only",
        run=run,
    )
    reg = ToolRegistry(tmp_path / "tools", [tool])
    assert reg.name_taken("opn_alias_count") == "builtin"
    logs: list[str] = []
    res = await use_tool(
        reg,
        "opn_alias_count",
        {"alias": "blocklist"},
        on_log=lambda s, t: logs.append(t),
        extra={"client": "fake-client"},
    )
    assert res.ok and res.result == {"entries": 3} and res.kind == "builtin"
    assert logs == ["reading alias blocklist via fake-client"]
    bad = await use_tool(reg, "opn_alias_count", {"alias": 5})
    assert not bad.ok and "args.alias: expected string, got int" in (bad.error or "")


def test_check_args_subset():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "mode": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    assert check_args(schema, {"n": 2, "mode": "a", "tags": ["x"]}) == []
    assert check_args(schema, {"n": True}) == ["args.n: expected integer, got bool"]
    assert check_args(schema, {"mode": "c", "tags": [1], "zz": 1}) == [
        "args: missing required 'n'",
        "args.mode: 'c' is not one of ['a', 'b']",
        "args.tags[0]: expected string, got int",
        "args: unexpected 'zz'",
    ]


def test_extract_code_prefers_the_fenced_block():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert extract_code("x = 2") == "x = 2\n"


def test_tool_subprocess_does_not_inherit_pythonpath(monkeypatch: pytest.MonkeyPatch):
    from fazai.tools.runner import child_env

    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    assert "PYTHONPATH" not in child_env()
    assert os.environ["PYTHONPATH"] == "/somewhere"


DOCS = Path(__file__).resolve().parents[1] / "docs" / "tools.md"


async def test_the_hand_written_example_in_the_docs_validates():
    import re

    doc = DOCS.read_text()
    source = re.search(r'```python\n("""Count the IPs.*?)```', doc, re.S)
    assert source is not None
    v = await validate_tool(source.group(1), "count_banned.py", expected_name="count_banned")
    assert v.ok, v.errors


async def test_the_configured_fallback_provider_writes_tool_specs_last_attempt(tmp_path: Path):
    # Wiring, as the daemon builds it: [[ai_provider.fallback]] reaches tool_spec's last attempt.
    from fazai.config import load_settings
    from fazai.sessions.glue import build_tool_services

    (tmp_path / "primary.json").write_text(json.dumps([answer(BAD_MARKER), "no code"]))
    (tmp_path / "fallback.json").write_text(json.dumps([answer(GOOD_MARKER)]))
    cfg = tmp_path / "fazai.toml"
    cfg.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[ai_provider]\nprovider = "scripted"\nscript = "{tmp_path / "primary.json"}"\n'
        f'[[ai_provider.fallback]]\nprovider = "scripted"\nscript = "{tmp_path / "fallback.json"}"\n'
    )
    settings = load_settings(cfg)
    services = build_tool_services(settings)
    primary = ScriptedProvider.from_file(tmp_path / "primary.json")
    build = await ToolSmith(services.registry, primary, services.fallback).build(REQUEST, "s_1")
    assert build.ok, build.error
    assert [a.kind for a in build.attempts] == ["write", "repair", "fallback"]


@pytest.mark.parametrize(
    "body",
    [
        "from os import system\ndef run(a, c):\n    system('id')\n",
        "def run(a, c):\n    __import__('os').system('id')\n",
        "import subprocess\ndef run(a, c):\n    return {'o': subprocess.getoutput('id')}\n",
        "def run(a, c):\n    exec('import os')\n",
        "import os\ndef run(a, c):\n    getattr(os, 'sys' + 'tem')('id')\n",
        "import os\ndef run(a, c):\n    os.__dict__['system']('id')\n",
        "import importlib\ndef run(a, c):\n    importlib.import_module('o' + 's')\n",
        "from os import *\ndef run(a, c):\n    return {}\n",
        "import sys\ndef run(a, c):\n    sys.modules['os'].popen('id')\n",
        "def run(a, c):\n    (lambda: 0).__globals__['__builtins__']\n",
        "import socket\ndef run(a, c):\n    socket.create_connection(('10.0.0.1', 80))\n",
        "import yaml_unknown\ndef run(a, c):\n    return {}\n",
        "def run(a, c)\n    broken\n",
    ],
)
def test_derived_risk_sees_through_evasions(body: str):
    # The bypasses of the old fixed-name list: all are opaque now (asked, never --yes).
    assert risk_floor(body)[0] == "opaque", body


async def test_declared_read_only_subprocess_tool_is_opaque_in_the_registry(tmp_path: Path):
    write_tool(
        tmp_path / "tools" / "stable",
        "sneaky",
        """
        from os import system
        def run(args, ctx):
            system("true")
            return {}
        """,
    )
    info = ToolRegistry(tmp_path / "tools").get("sneaky")
    assert info.risk == "opaque"  # declared read_only by write_tool's SPEC; derived from the code


async def test_tools_are_off_without_bubblewrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import fazai.tools.sandbox as sb

    monkeypatch.setattr(sb, "bwrap_path", lambda: None)
    v = await validate_tool(GOOD_MARKER, "x.py", expected_name="write_marker")
    assert not v.ok and "bubblewrap" in v.errors[0] and "tools are off" in v.errors[0]
    write_tool(tmp_path / "tools" / "stable", "reader", "def run(args, ctx):\n    return {'ok': True}\n")
    run = await use_tool(ToolRegistry(tmp_path / "tools"), "reader", {}, timeout_s=10)
    assert not run.ok and "tools are off" in (run.error or "")
