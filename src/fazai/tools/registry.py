"""Where tools live and how they are found.

Three kinds, looked up in this order:

* **builtin** — defined in Python inside FazAI (e.g. OPNsense operations), registered at start with
  :meth:`ToolRegistry.register_builtin`; they run in-process (``async run(args, ctx)``).
* **generated** — written by the model for one session: ``<tools_dir>/_generated/<session>/<name>.py``
  with a ``<name>.json`` validation record beside it. Only validated ones (record present and
  matching the file's SHA-256) are offered, and only to their session.
* **stable** — promoted by an operator (``fazai tools promote``) into ``<tools_dir>/stable/``;
  offered to every session.

The registry reads a tool's ``SPEC`` from its source with :func:`fazai.tools.spec.read_spec`, never
by importing it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fazai.tools.spec import (
    BUILTIN_NAME_RE,
    NAME_RE,
    Risk,
    ToolSpec,
    ToolSpecError,
    read_spec,
    risk_floor,
    stricter,
)

Kind = Literal["builtin", "generated", "stable"]


class ToolNotFound(LookupError):
    """No tool of that name is available here; the message lists the ones that are."""


@dataclass(slots=True)
class BuiltinTool:
    """A tool defined in Python: ``async run(args, ctx) -> dict``, run in-process.

    ``ctx`` has ``log(msg)``, ``testing`` (False) and ``tmp``, plus the keyword ``extra`` given to
    the executor (e.g. an OPNsense client) as attributes.
    """

    name: str
    description: str
    inputs: dict[str, Any]
    risk: Risk
    run: Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]
    tests: list[dict[str, Any]] = field(default_factory=list)
    # Optional dry run: ``async preview(args) -> dict`` computes what ``run`` would change without
    # changing anything. ``use_tool`` shows it to the operator with the approval request.
    preview: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    # ``critical(args)``: why this call is security-critical (None when it is not); the safety policy then
    # needs an operator's explicit approval, whatever --yes or [safety] auto_approve say.
    critical: Callable[[dict[str, Any]], str | None] | None = None

    def spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            inputs=self.inputs,
            risk=self.risk,
            tests=self.tests,
        )


@dataclass(slots=True)
class ToolInfo:
    """A tool the registry knows, with where it comes from."""

    spec: ToolSpec
    kind: Kind
    path: Path | None = None
    session: str | None = None
    builtin: BuiltinTool | None = None
    validation: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def risk(self) -> Risk:
        """The risk class the safety policy checks before ``use_tool`` runs it."""
        return self.spec.risk

    def source(self) -> str:
        """The tool's code ('' for built-ins)."""
        return self.path.read_text() if self.path else ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (``fazai tools list --json``, the prompt's tool list)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "risk": self.risk,
            "description": self.spec.description,
            "inputs": self.spec.inputs,
            "session": self.session,
            "path": str(self.path) if self.path else None,
        }


def safe_session(session: str) -> str:
    """A session id usable as a directory name (anything else becomes ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", session).strip(".")
    if not cleaned:
        raise ValueError(f"invalid session id {session!r}")
    return cleaned


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ToolRegistry:
    """Built-in, generated (per session) and stable tools under ``tools_dir``."""

    def __init__(self, tools_dir: Path, builtins: Iterable[BuiltinTool] = ()):
        self.tools_dir = Path(tools_dir)
        self._builtins: dict[str, BuiltinTool] = {}
        for b in builtins:
            self.register_builtin(b)

    # -- layout

    @property
    def stable_dir(self) -> Path:
        return self.tools_dir / "stable"

    def generated_dir(self, session: str) -> Path:
        return self.tools_dir / "_generated" / safe_session(session)

    # -- built-ins

    def register_builtin(self, tool: BuiltinTool) -> None:
        """Add a Python-defined tool; its name must be valid and not taken by another built-in."""
        if not BUILTIN_NAME_RE.match(tool.name):
            raise ToolSpecError(f"built-in tool name {tool.name!r} must match {BUILTIN_NAME_RE.pattern}")
        if tool.name in self._builtins and self._builtins[tool.name] is not tool:
            raise ToolSpecError(f"a built-in tool named {tool.name!r} is already registered")
        self._builtins[tool.name] = tool

    def replace_builtins(self, tools: Iterable[BuiltinTool]) -> None:
        """Swap the whole built-in set (e.g. a firewall was registered since this process started)."""
        old = self._builtins
        self._builtins = {}
        try:
            for t in tools:
                self.register_builtin(t)
        except ToolSpecError:
            self._builtins = old
            raise

    # -- reading

    def _load_file(self, path: Path, kind: Kind, session: str | None) -> ToolInfo | None:
        try:
            source = path.read_text()
            spec = read_spec(source, str(path))
        except (OSError, UnicodeDecodeError, ToolSpecError):
            return None
        record = self._record(path)
        if kind == "generated" and (record is None or record.get("sha256") != sha256_text(source)):
            return None  # not validated, or changed since: never offered
        # Every module tool's class is derived from its code; a declared class only makes it stricter.
        floor, why = risk_floor(source)
        if stricter(spec.risk, floor) != spec.risk:
            record = dict(record or {}, risk_raised=f"declared {spec.risk} but {why}")
            spec.risk = floor
        return ToolInfo(spec=spec, kind=kind, path=path, session=session, validation=record)

    @staticmethod
    def _record(path: Path) -> dict[str, Any] | None:
        rec = path.with_suffix(".json")
        if not rec.is_file():
            return None
        try:
            data = json.loads(rec.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def stable(self) -> list[ToolInfo]:
        """Tools an operator promoted; offered to every session."""
        if not self.stable_dir.is_dir():
            return []
        found = (self._load_file(p, "stable", None) for p in sorted(self.stable_dir.glob("*.py")))
        return [t for t in found if t is not None]

    def generated(self, session: str | None = None) -> list[ToolInfo]:
        """Validated generated tools of one session (or of every session when ``session`` is None)."""
        root = self.tools_dir / "_generated"
        if not root.is_dir():
            return []
        dirs = [self.generated_dir(session)] if session else sorted(p for p in root.iterdir() if p.is_dir())
        out = []
        for d in dirs:
            for p in sorted(d.glob("*.py")):
                info = self._load_file(p, "generated", d.name)
                if info is not None:
                    out.append(info)
        return out

    def builtins(self) -> list[ToolInfo]:
        return [ToolInfo(spec=b.spec(), kind="builtin", builtin=b) for b in self._builtins.values()]

    def available(self, session: str | None = None) -> list[ToolInfo]:
        """What a session may use: built-ins, its own generated tools, then stable ones (one per name)."""
        seen: set[str] = set()
        out = []
        for info in [*self.builtins(), *(self.generated(session) if session else []), *self.stable()]:
            if info.name not in seen:
                seen.add(info.name)
                out.append(info)
        return out

    def all(self) -> list[ToolInfo]:
        """Every tool, generated ones of every session included (for ``fazai tools list``)."""
        return [*self.builtins(), *self.stable(), *self.generated()]

    def get(self, name: str, session: str | None = None) -> ToolInfo:
        """The tool ``name`` as this session sees it; :class:`ToolNotFound` lists the alternatives."""
        for info in self.available(session):
            if info.name == name:
                return info
        names = ", ".join(t.name for t in self.available(session)) or "none"
        raise ToolNotFound(
            f"no tool named {name!r} is available (available: {names}); create it with tool_spec"
        )

    def name_taken(self, name: str) -> Kind | None:
        """Whether a built-in or stable tool already uses ``name`` (generated tools may not shadow them)."""
        if name in self._builtins:
            return "builtin"
        if any(t.name == name for t in self.stable()):
            return "stable"
        return None

    # -- writing

    def save_generated(self, session: str, name: str, source: str) -> Path:
        """Write a candidate tool (not offered until :meth:`mark_validated`)."""
        if not NAME_RE.match(name):
            raise ToolSpecError(f"tool name {name!r} must match {NAME_RE.pattern}")
        d = self.generated_dir(session)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{name}.py"
        path.with_suffix(".json").unlink(missing_ok=True)
        path.write_text(source)
        return path

    def mark_validated(self, path: Path, report: dict[str, Any]) -> None:
        """Record that the file at ``path`` passed validation (bound to its current SHA-256)."""
        record = dict(report, sha256=sha256_text(path.read_text()))
        path.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str))

    def reject(self, path: Path, errors: list[str]) -> Path:
        """Keep a candidate that failed validation as ``<name>.py.rejected`` (for the operator to read)."""
        rejected = path.with_name(path.name + ".rejected")
        path.replace(rejected)
        path.with_suffix(".json").unlink(missing_ok=True)
        rejected.with_name(path.stem + ".errors.txt").write_text("\n\n".join(errors))
        return rejected

    def find_generated(self, name: str, session: str | None = None) -> ToolInfo:
        """A generated tool by name; ambiguous across sessions is an error naming them."""
        matches = [t for t in self.generated(session) if t.name == name]
        if not matches:
            raise ToolNotFound(
                f"no validated generated tool named {name!r}" + (f" in session {session}" if session else "")
            )
        if len(matches) > 1:
            sessions = ", ".join(str(t.session) for t in matches)
            raise ToolNotFound(f"tool {name!r} exists in several sessions ({sessions}); pass --session")
        return matches[0]

    def promote(self, name: str, session: str | None = None, *, force: bool = False) -> Path:
        """Copy a validated generated tool into ``stable/`` (with its validation record)."""
        info = self.find_generated(name, session)
        assert info.path is not None
        self.stable_dir.mkdir(parents=True, exist_ok=True)
        dest = self.stable_dir / f"{name}.py"
        if dest.exists() and not force:
            raise FileExistsError(
                f"a stable tool {name!r} already exists at {dest}; use --force to replace it"
            )
        shutil.copy2(info.path, dest)
        rec = info.path.with_suffix(".json")
        if rec.exists():
            record = json.loads(rec.read_text())
            record["promoted_from"] = str(info.path)
            dest.with_suffix(".json").write_text(json.dumps(record, indent=2))
        return dest

    def remove(self, name: str, *, kind: Kind = "stable", session: str | None = None) -> list[Path]:
        """Delete a stable tool, or a generated one (of one session, or of all sessions)."""
        if kind == "builtin":
            raise ValueError("built-in tools are part of FazAI and cannot be removed")
        if kind == "stable":
            targets = [self.stable_dir / f"{name}.py"]
        else:
            root = self.tools_dir / "_generated"
            dirs = (
                [self.generated_dir(session)]
                if session
                else (sorted(root.iterdir()) if root.is_dir() else [])
            )
            targets = [d / f"{name}.py" for d in dirs]
        removed = []
        for p in targets:
            if p.exists():
                p.unlink()
                p.with_suffix(".json").unlink(missing_ok=True)
                removed.append(p)
        if not removed:
            raise ToolNotFound(f"no {kind} tool named {name!r} to remove")
        return removed
