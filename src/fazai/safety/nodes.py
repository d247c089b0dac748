"""Helpers over bashlex nodes: children, substitutions, argv and here-doc text of a command."""

from __future__ import annotations

from typing import Any


def children(node: Any) -> list[Any]:
    out: list[Any] = []
    for attr in ("parts", "list"):
        v = getattr(node, attr, None)
        if isinstance(v, list):
            out.extend(v)
    for attr in ("command",):
        v = getattr(node, attr, None)
        if v is not None and hasattr(v, "kind"):
            out.append(v)
    return out


def iter_commands(node: Any) -> list[Any]:
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if getattr(n, "kind", None) == "command":
            out.append(n)
        stack.extend(children(n))
    return out


def substitutions(node: Any) -> list[Any]:
    """$(…), `…` and <(…) anywhere inside a word, assignment or redirection (not nested deeper)."""
    out: list[Any] = []
    stack = list(getattr(node, "parts", []) or [])
    if getattr(node, "kind", None) == "redirect" and hasattr(node.output, "kind"):
        stack.append(node.output)
    while stack:
        n = stack.pop()
        if n.kind in {"commandsubstitution", "processsubstitution"}:
            out.append(n)
        else:
            stack.extend(getattr(n, "parts", []) or [])
    return out


def single_source(word: Any) -> Any:
    parts = getattr(word, "parts", []) or []
    subs = [p for p in parts if p.kind in {"commandsubstitution", "processsubstitution"}]
    return subs[0] if len(subs) == 1 else None


def argv_of(node: Any) -> list[str]:
    if getattr(node, "kind", None) != "command":
        return ["(compound)"]
    return [p.word for p in node.parts if p.kind == "word"]


def heretext(node: Any) -> str | None:
    for p in getattr(node, "parts", []) or []:
        if p.kind == "redirect":
            if p.type == "<<<" and getattr(p.output, "kind", None) == "word":
                return p.output.word
            hd = getattr(p, "heredoc", None)
            if hd is not None:
                return hd.value.rsplit("\n", 1)[0]
    return None


def pipeline_commands(node: Any) -> list[Any] | None:
    if node.kind == "command":
        return [node]
    if node.kind == "pipeline":
        cmds = [p for p in node.parts if p.kind not in {"pipe"}]
        return cmds if all(c.kind == "command" for c in cmds) else None
    return None
