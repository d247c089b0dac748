"""Load playbook YAML files, reporting every problem with its file and line.

PyYAML gives the document and, from its node tree, the line of every key and item; pydantic's error
locations are mapped back onto those lines. An unknown key (a typo) gets a "did you mean" from the
names the format knows.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fazai.playbooks import schema
from fazai.playbooks.schema import Playbook

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a playbook file."""

    line: int
    where: str
    message: str


class PlaybookError(ValueError):
    """A playbook file is not valid; ``problems`` lists each one with its line."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        lines = [f"{path}:{p.line}: {p.where + ': ' if p.where else ''}{p.message}" for p in problems]
        super().__init__("\n".join(lines))


def _vocabulary() -> list[str]:
    names: set[str] = set()
    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            for fname, f in obj.model_fields.items():
                names.add(f.alias or fname)
    return sorted(names)


_VOCAB = _vocabulary()


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema model at ``loc`` (a path of keys and list indexes), if it is one."""
    cur: Any = Playbook
    for part in loc:
        if isinstance(part, int):
            continue  # list item: the item type was unwrapped below
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            by_alias = (
                {f.alias: f for f in cur.model_fields.values() if f.alias} if isinstance(cur, type) else {}
            )
            if part not in by_alias:
                return None
            ann = by_alias[part].annotation
        else:
            ann = cur.model_fields[part].annotation
        # Unwrap X | None and list[X] down to a model.
        while True:
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if args and not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                ann = args[0]
                continue
            break
        cur = ann
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _suggest(loc: Loc, key: str) -> str | None:
    model = _model_at(loc)
    names = [f.alias or n for n, f in model.model_fields.items()] if model is not None else _VOCAB
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _index(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = (*path, k.value)
            out[key] = k.start_mark.line + 1
            _index(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), out)


def _line(lines: dict[Loc, int], loc: Loc) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _where(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_playbook(text: str, path: str = "<playbook>") -> Playbook:
    """Validate one playbook document; :class:`PlaybookError` lists its problems with lines."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        raise PlaybookError(path, [Problem(line, "", f"not valid YAML: {problem}")]) from e
    if not isinstance(data, dict) or root is None:
        raise PlaybookError(path, [Problem(1, "", "a playbook is a mapping (name:, trigger:, steps: …)")])
    lines: dict[Loc, int] = {}
    _index(root, (), lines)
    crossed = _cross_check(data)
    if crossed:
        raise PlaybookError(path, [Problem(_line(lines, loc), _where(loc), msg) for loc, msg in crossed])
    try:
        return Playbook.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                key = str(loc[-1])
                loc_where = loc[:-1]
                close = _suggest(loc_where, key)
                msg = f"unknown key {key!r}" + (f" (did you mean {close!r}?)" if close else "")
            else:
                loc_where = loc
            problems.append(Problem(_line(lines, loc), _where(loc_where), msg))
        problems.sort(key=lambda p: p.line)
        raise PlaybookError(path, problems) from e


def _cross_check(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Checks across steps (ids, ``when`` references), located at the step that is wrong.

    The model checks them too, but its errors would point at the whole file.
    """
    steps = data.get("steps")
    if not isinstance(steps, list):
        return []
    out: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, st in enumerate(steps):
        if not isinstance(st, dict):
            continue
        kind = next((k for k in schema.STEP_KINDS if k in st), "step")
        sid = str(st.get("id") or f"{kind}{i + 1}")
        if sid in seen:
            out.append((("steps", i, "id"), f"two steps have the id {sid!r}"))
        when = st.get("when")
        if isinstance(when, dict) and "step" in when and str(when["step"]) not in seen:
            out.append(
                (
                    ("steps", i, "when", "step"),
                    f"`when` refers to {when['step']!r}, which is not an earlier step",
                )
            )
        seen.add(sid)
    return out


def load_playbook(path: Path) -> Playbook:
    """Read and validate one file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise PlaybookError(str(path), [Problem(1, "", f"cannot read it: {e.strerror}")]) from e
    return parse_playbook(text, str(path))


def load_dir(folder: Path) -> tuple[list[Playbook], list[PlaybookError]]:
    """Every ``*.yaml``/``*.yml`` of ``folder``: the valid playbooks, and the errors of the others."""
    books: list[Playbook] = []
    errors: list[PlaybookError] = []
    if not folder.is_dir():
        return books, errors
    names: set[str] = set()
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            pb = load_playbook(path)
        except PlaybookError as e:
            errors.append(e)
            continue
        if pb.name in names:
            errors.append(
                PlaybookError(str(path), [Problem(1, "name", f"another file is named {pb.name!r}")])
            )
            continue
        names.add(pb.name)
        books.append(pb)
    return books, errors


def dump_any(value: Any) -> str:
    """YAML text of a value (for the what-if output)."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()
