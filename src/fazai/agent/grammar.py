"""GBNF grammar for the action protocol, generated from the actions offered.

Under this grammar a model writes at most two short reasoning lines (no braces, so they can never be
mistaken for an action) and then exactly one action as one-line JSON with its fields in a fixed
order. Even a tiny local model then always produces a line the parser accepts (ARCHITECTURE §2).
"""

from __future__ import annotations

from collections.abc import Iterable

from fazai.protocol import ACTION_KINDS

# Reusable JSON pieces. Strings forbid raw control characters (newlines included): one line per action.
_COMMON = r"""
reason-line ::= [^{}\n\t ] [^{}\n]* "\n"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])
strlist ::= "[" (string (", " string)*)? "]"
strlist1 ::= "[" string (", " string)* "]"
step ::= "\"" char{1,120} "\""
seconds ::= [1-9] [0-9]{0,4}
value ::= object | array | string | jnumber | "true" | "false" | "null"
object ::= "{" (string ": " value (", " string ": " value)*)? "}"
array ::= "[" (value (", " value)*)? "]"
jnumber ::= "-"? [0-9]+ ("." [0-9]+)?
""".strip()

# One rule per action kind: fields in the same order as the prompt's examples.
_ACTION_RULES: dict[str, str] = {
    # At most 6 short steps: a small model otherwise writes a whole essay into a plan and hits the
    # token limit before closing it (seen with Qwen 0.5B, which also put its guessed answer there).
    "plan": r'"{\"action\": \"plan\", \"steps\": [" step (", " step){0,5} "]}"',
    "ask": r'"{\"action\": \"ask\", \"question\": " string (", \"options\": " strlist1)? '
    r'(", \"default\": " string)? "}"',
    "research": r'"{\"action\": \"research\", \"query\": " string '
    r'(", \"sources\": [" source (", " source)* "]")? "}"',
    "shell": r'"{\"action\": \"shell\", \"command\": " string (", \"timeout\": " seconds)? '
    r'(", \"target\": " string)? "}"',
    "tool_spec": r'"{\"action\": \"tool_spec\", \"name\": \"" [a-z] [a-z0-9_]{0,63} "\", \"description\": " '
    r'string ", \"inputs\": " object (", \"outputs\": " object)? (", \"tests\": " array)? "}"',
    "use_tool": r'"{\"action\": \"use_tool\", \"name\": " string ", \"args\": " object "}"',
    "observe": r'"{\"action\": \"observe\", \"summary\": " string (", \"next\": " string)? "}"',
    "commit_kb": r'"{\"action\": \"commit_kb\", \"title\": " string ", \"snippet\": " string '
    r'", \"tags\": " strlist ", \"status\": " ("\"verified\"" | "\"unverified\"")'
    r' (", \"check\": " string)? "}"',
    "done": r'"{\"action\": \"done\", \"answer\": " string '
    r'", \"status\": " ("\"success\"" | "\"failed\"" | "\"blocked\"") "}"',
}
assert set(_ACTION_RULES) == set(ACTION_KINDS)


# ``fazai ask``: a shell action may carry several independent commands (run in parallel).
_SHELL_MULTI = (
    r'"{\"action\": \"shell\", " ("\"command\": " string | "\"commands\": [" string (", " string){0,7} "]") '
    r'(", \"timeout\": " seconds)? "}"'
)


def grammar_for(actions: Iterable[str], *, reasoning_lines: int = 2, multi_command: bool = False) -> str:
    """A GBNF grammar: up to ``reasoning_lines`` short lines of prose, then one offered action.

    ``multi_command`` lets ``shell`` carry ``commands`` (a list) instead of one ``command``.

    Raises ``ValueError`` for an unknown action kind or an empty list.
    """
    kinds = list(dict.fromkeys(actions))
    unknown = [k for k in kinds if k not in _ACTION_RULES]
    if unknown:
        raise ValueError(f"unknown action kind(s) {unknown}; known: {', '.join(ACTION_KINDS)}")
    if not kinds:
        raise ValueError("grammar_for needs at least one action kind")
    reasoning = " ".join(["reason-line?"] * max(0, reasoning_lines))
    lines = [
        f"root ::= {reasoning} action".replace("  ", " "),
        "action ::= " + " | ".join(f"act-{k.replace('_', '-')}" for k in kinds),
    ]
    rules = {**_ACTION_RULES, **({"shell": _SHELL_MULTI} if multi_command else {})}
    lines += [f"act-{k.replace('_', '-')} ::= {rules[k]}" for k in kinds]
    if "research" in kinds:
        lines.append(r'source ::= "\"kb\"" | "\"docs\"" | "\"web\""')
    lines.append(_COMMON)
    return "\n".join(lines) + "\n"
