"""Load playbook YAML files, reporting every problem with its file and line.

PyYAML gives the document and, from its node tree, the line of every key and item; pydantic's error
locations are mapped back onto those lines. An unknown key (a typo) gets a "did you mean" from the
names the format knows.
"""

from __future__ import annotations

import difflib
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
    try:
        return Playbook.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                key = str(loc[-1])
                close = difflib.get_close_matches(key, _VOCAB, n=1, cutoff=0.6)
                msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                loc_where = loc[:-1]
            else:
                loc_where = loc
            problems.append(Problem(_line(lines, loc), _where(loc_where), msg))
        problems.sort(key=lambda p: p.line)
        raise PlaybookError(path, problems) from e


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
