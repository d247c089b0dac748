"""The interface of a tool module, read without running it.

A tool is a Python module with two things at module level::

    SPEC = {
        "name": "count_lines",
        "description": "Count the lines of a text file",
        "inputs": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        "risk": "read_only",              # a hint only: the class is derived from the code (see below)
        "tests": [{"args": {"path": "/etc/hostname"}, "expect": {"lines": 1}}],
    }

    def run(args: dict, ctx) -> dict:
        ctx.log("counting lines of " + args["path"])   # say what it reads or changes
        ...
        return {"lines": n}

``run`` must be idempotent (running it twice leaves the same state) and log every change it makes.
``SPEC`` must be a literal (it is read with :func:`ast.literal_eval`, so the daemon never executes a
tool's code to learn what it is). A declared test passes when ``run`` returns a dict containing
every key/value of ``expect`` (a subset match), or raises an error containing ``expect_error``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Risk = Literal["read_only", "changes_state", "opaque", "destructive"]
RISKS: tuple[str, ...] = ("read_only", "changes_state", "opaque", "destructive")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Built-in tools may be namespaced (``opnsense.block_ip``). Generated tools never have a dot, so
# they can never take a built-in's name.
BUILTIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,63})?$")


class ToolSpecError(ValueError):
    """A tool module or spec is not valid; the message says what to fix."""


@dataclass(slots=True)
class ToolSpec:
    """What a tool is: name, description, inputs (JSON Schema), risk class and declared tests."""

    name: str
    description: str
    inputs: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    risk: Risk = "changes_state"
    tests: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> ToolSpec:
        """Build a spec from a ``SPEC`` dict; an unknown or missing risk becomes ``changes_state``."""
        if not isinstance(raw, dict):
            raise ToolSpecError(f"SPEC must be a dict, got {type(raw).__name__}")
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ToolSpecError(f"SPEC['name'] must match {NAME_RE.pattern}, got {name!r}")
        desc = raw.get("description")
        if not isinstance(desc, str) or not desc.strip():
            raise ToolSpecError("SPEC['description'] must be a non-empty string")
        inputs = raw.get("inputs") or {"type": "object", "properties": {}}
        if not isinstance(inputs, dict) or inputs.get("type", "object") != "object":
            raise ToolSpecError("SPEC['inputs'] must be a JSON Schema of type 'object'")
        risk = raw.get("risk")
        tests = raw.get("tests") or []
        if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
            raise ToolSpecError("SPEC['tests'] must be a list of {'args': {...}, 'expect': {...}}")
        outputs = raw.get("outputs")
        return cls(
            name=name,
            description=desc.strip(),
            inputs=inputs,
            risk=risk if risk in RISKS else "changes_state",
            tests=tests,
            outputs=outputs if isinstance(outputs, dict) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (the shape of ``SPEC``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputs": self.inputs,
            "risk": self.risk,
            "tests": self.tests,
        }
        if self.outputs is not None:
            out["outputs"] = self.outputs
        return out


def read_spec(source: str, filename: str = "<tool>") -> ToolSpec:
    """Parse a tool module's source and return its ``SPEC``, without executing anything.

    Raises :class:`ToolSpecError` when the code does not parse, ``SPEC`` is missing or not a
    literal, or there is no ``run(args, ctx)`` function.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise ToolSpecError(f"syntax error at line {e.lineno}: {e.msg}") from e
    spec_node: ast.expr | None = None
    run_def: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "SPEC" for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "SPEC"
        ):
            spec_node = node.value
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "run":
            run_def = node
    if spec_node is None:
        raise ToolSpecError("the module has no module-level SPEC = {...}")
    try:
        raw = ast.literal_eval(spec_node)
    except ValueError as e:
        raise ToolSpecError(f"SPEC must be a plain literal (no names or calls): {e}") from e
    if run_def is None:
        raise ToolSpecError("the module has no module-level def run(args, ctx)")
    if isinstance(run_def, ast.AsyncFunctionDef):
        raise ToolSpecError("run must be a plain function: def run(args, ctx) -> dict")
    if len(run_def.args.args) != 2:
        raise ToolSpecError("run must take exactly two arguments: def run(args, ctx)")
    return ToolSpec.from_dict(raw)


# ---------------------------------------------------------------------------- argument validation

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def check_args(schema: dict[str, Any], value: Any, path: str = "args") -> list[str]:
    """Check ``value`` against the common subset of JSON Schema tools use for their inputs.

    Supported: ``type`` (one or a list), ``properties``, ``required``, ``additionalProperties:
    false``, ``enum``, ``items``, ``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``.
    Returns the problems found (empty when the value is valid). Unknown keywords are ignored.
    """
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = False
        for t in names:
            py = _TYPES.get(t)
            if py is None:
                continue
            # bool is an int in Python, but not in JSON Schema.
            if isinstance(value, bool) and t in ("integer", "number"):
                continue
            if isinstance(value, py):
                ok = True
        if not ok:
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                problems.append(f"{path}: missing required '{req}'")
        for key, sub in value.items():
            if key in props:
                problems += check_args(props[key], sub, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected '{key}'")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += check_args(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: does not match {schema['pattern']}")
    return problems


# ------------------------------------------------------------------------------------ risk floor

_RISK_ORDER = {"read_only": 0, "changes_state": 1, "opaque": 2, "destructive": 3}
# Calls that can change the machine. A generated tool that declares itself read_only but uses one of
# these is treated as changes_state until an operator promotes it (a model may under-declare).
_WRITE_CALLS = frozenset(
    {
        "os.remove",
        "os.unlink",
        "os.rename",
        "os.replace",
        "os.rmdir",
        "os.removedirs",
        "os.makedirs",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.symlink",
        "os.link",
        "os.kill",
        "os.system",
        "os.popen",
        "os.truncate",
        "subprocess.run",
        "subprocess.call",
        "subprocess.check_call",
        "subprocess.check_output",
        "subprocess.Popen",
        "shutil.rmtree",
        "shutil.move",
        "shutil.copy",
        "shutil.copy2",
        "shutil.copyfile",
        "shutil.copytree",
        "shutil.chown",
    }
)


def stricter(a: Risk, b: Risk) -> Risk:
    """The riskier of two classes."""
    return a if _RISK_ORDER[a] >= _RISK_ORDER[b] else b


def risk_floor(source: str) -> tuple[Risk, str | None]:
    """The least risk class the code itself implies, and why (``("read_only", None)`` when nothing).

    Derived by :func:`fazai.safety.pycode.derive_risk`, which walks every import, name, attribute and
    call: a model's declared class only ever makes a tool stricter, never more trusted.
    """
    from fazai.safety.pycode import derive_risk

    risk, why = derive_risk(source)
    value = str(risk.value)
    return (value if value in _RISK_ORDER else "opaque"), (why[0] if why else None)  # type: ignore[return-value]


def _fixed_list_floor(source: str) -> tuple[Risk, str | None]:
    # The former fixed-list check, kept only as a second opinion (a stricter answer still wins).
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "changes_state", "does not parse"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in _WRITE_CALLS or (name and name.endswith((".write_text", ".write_bytes", ".unlink"))):
                return "changes_state", f"calls {name}"
            if name == "open" and _open_writes(node):
                return "changes_state", "opens a file for writing"
    return "read_only", None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else f"?.{node.attr}"
    return None


def _open_writes(call: ast.Call) -> bool:
    mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return True  # a computed mode: assume it writes
