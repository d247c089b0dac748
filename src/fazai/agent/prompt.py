"""Prompt assembly, in one place: system rules, context blocks, compact history, the goal.

The system message depends only on the actions offered, so it is identical across sessions and the
worker evaluates it once (shared prefix cache). The first user message holds the session's context
(system facts, knowledge-base hits) and its goal; it never changes afterwards. Later turns are
appended, so each generation only evaluates what is new — until the history outgrows its budget and
old observations are shortened (stated in the text).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fazai.agent.history import Entry, History
from fazai.models.base import Message

# One line of description and one example per action kind. Examples use the canonical field order
# (the same order as the grammar), so the model sees exactly the shape it must produce.
ACTION_DOCS: dict[str, tuple[str, str]] = {
    "plan": (
        "state a short plan for a multi-step goal (no side effect)",
        '{"action": "plan", "steps": ["<first step>", "<second step>"]}',
    ),
    "ask": (
        "ask the operator when the goal is ambiguous or the choice is theirs",
        '{"action": "ask", "question": "<the question>", "options": ["<option 1>", "<option 2>"], '
        '"default": "<option 1>"}',
    ),
    "research": (
        "look something up in the knowledge base, documentation or the web",
        '{"action": "research", "query": "<what to look up>", "sources": ["kb", "docs"]}',
    ),
    "shell": (
        'run one non-interactive bash one-liner on the server (optional "timeout" in seconds)',
        '{"action": "shell", "command": "<one bash one-liner>"}',
    ),
    "tool_spec": (
        "define a reusable tool (name, description, JSON Schema of its inputs)",
        '{"action": "tool_spec", "name": "<tool_name>", "description": "<what it does>", '
        '"inputs": {"type": "object", "properties": {"<input>": {"type": "string"}}}}',
    ),
    "use_tool": (
        "run a registered tool",
        '{"action": "use_tool", "name": "<a tool from the Tools list>", "args": {"<input>": "<value>"}}',
    ),
    "observe": (
        "note what you learned when more steps follow (not needed before done)",
        '{"action": "observe", "summary": "<what the last output showed>", "next": "<what to check next>"}',
    ),
    "commit_kb": (
        "save a procedure that worked here; it stays unverified until its check passes on a later run",
        '{"action": "commit_kb", "title": "<what it does>", "snippet": "<the commands that worked>", '
        '"tags": ["<service>"], "status": "unverified", "check": "<a read-only command that proves it>"}',
    ),
    "done": (
        "finish: the answer for the operator, with status success, failed or blocked",
        '{"action": "done", "answer": "<the answer to the goal, with the facts found>", "status": "success"}',
    ),
}

_RULES = """\
You are FazAI, an operations assistant working on a Linux server as its administrator.
You reach the operator's goal in steps. In each answer:
1. Optionally write one short line of reasoning.
2. Then write exactly ONE action: a JSON object on a single line. Write nothing after it.
After each action you receive an observation with its result; base your next step on it.

Rules:
- Use only the actions listed below, with exactly the fields shown.
- Shell commands are one-liners for bash: non-interactive (no editors, no pagers; use --no-pager),
  one step at a time, read-only checks before changes. Every command passes a safety policy;
  changes may need the operator's approval and forbidden commands never run.
- Long outputs are cut: you see the head and the tail, and the observation says so.
- If the goal is ambiguous or a decision belongs to the operator, ask instead of guessing.
- Replace every <...> in the examples with real content; never copy an example's values.
- When the goal is met, or cannot be met, finish with done and give the answer with the facts you found."""


def system_prompt(offered: Sequence[str]) -> str:
    """The stable system message: protocol rules and the catalog of the offered actions."""
    lines = [_RULES, "", "Actions:"]
    for kind in offered:
        desc, example = ACTION_DOCS.get(kind, ("", f'{{"action": "{kind}"}}'))
        lines.append(f"- {kind}: {desc}\n  {example}")
    return "\n".join(lines)


def kb_hit_line(hit: dict[str, Any]) -> str:
    """How one knowledge-base hit appears in the prompt (the KB token budget is counted on this).

    No item id: no action takes one, and a small model copied ``starter.answer-user-info`` into a
    command as the user name it was to fill in (the event log keeps the ids).
    """
    return f"- [{hit.get('status', 'unverified')}] {hit.get('title', '')}: {hit.get('snippet', '')}"


def context_block(context: dict[str, Any]) -> str:
    """Render the context of a goal: system facts, tools, knowledge-base hits (verified first)."""
    parts: list[str] = []
    facts = str(context.get("facts") or "").strip()
    if facts:
        parts.append("## System facts\n" + facts)
    hits = list(context.get("kb") or [])
    if hits:
        hits.sort(key=lambda h: (h.get("status") != "verified", -float(h.get("score") or 0.0)))
        heading = context.get("kb_heading") or (
            "## What FazAI already knows (knowledge base; verified items were tested, adapt them)"
        )
        parts.append(heading + "\n" + "\n".join(kb_hit_line(h) for h in hits))
    if context.get("scratch"):
        parts.append(
            f"## Scratch directory (yours alone; you may write files only here)\n{context['scratch']}"
        )
    tools = list(context.get("tools") or [])
    if tools:
        lines = [
            f"- {t.get('name')} [{t.get('risk')}]: {t.get('description', '')}"
            + (f" args: {', '.join(t['args'])}" if t.get("args") else "")
            for t in tools
        ]
        parts.append("## Tools for use_tool (* = required)\n" + "\n".join(lines))
    docs = str(context.get("docs") or "").strip()
    if docs:
        parts.append("## Documentation\n" + docs)
    return "\n\n".join(parts)


def _goal_message(entry: Entry, first: bool) -> str:
    if not first:
        # A later goal brings its own knowledge-base hits; the system facts stay those at the top.
        ctx = context_block({k: v for k, v in entry.context.items() if k != "facts"})
        return (ctx + "\n\n" if ctx else "") + f"New goal: {entry.text}"
    ctx = context_block(entry.context)
    return (ctx + "\n\n" if ctx else "") + f"Goal: {entry.text}"


def _observation_message(text: str) -> str:
    return f"Observation: {text}"


def _shorten(text: str, keep: int = 240) -> str:
    if len(text) <= keep:
        return text
    return text[:keep] + f"\n[older output shortened: {len(text) - keep} characters dropped to save space]"


def build_messages(
    history: History,
    offered: Sequence[str],
    *,
    budget_chars: int = 20000,
    keep_recent: int = 6,
    system: str | None = None,
) -> list[Message]:
    """The whole conversation for the next generation.

    When the history is longer than ``budget_chars``, observations older than the last
    ``keep_recent`` entries are shortened, oldest first, until it fits (the text says so).
    """
    entries = list(history.entries)
    texts = [e.text for e in entries]
    total = sum(len(t) for t in texts)
    for i, e in enumerate(entries[: max(0, len(entries) - keep_recent)]):
        if total <= budget_chars:
            break
        if e.role == "observation":
            short = _shorten(texts[i])
            total -= len(texts[i]) - len(short)
            texts[i] = short
    messages: list[Message] = [Message("system", system if system is not None else system_prompt(offered))]
    first_goal = True
    for e, text in zip(entries, texts, strict=True):
        if e.role == "goal":
            role, content = "user", _goal_message(Entry("goal", text, context=e.context), first_goal)
            first_goal = False
        elif e.role == "assistant":
            role, content = "assistant", text
        else:
            role, content = "user", _observation_message(text)
        _append(messages, role, content)
    return messages


def _append(messages: list[Message], role: str, content: str) -> None:
    # Chat templates want alternating roles: merge neighbours of the same role.
    if messages and messages[-1].role == role and role != "system":
        messages[-1] = Message(role, messages[-1].content + "\n\n" + content)  # type: ignore[arg-type]
    else:
        messages.append(Message(role, content))  # type: ignore[arg-type]


def offered_actions(available: Iterable[str], order: Sequence[str]) -> list[str]:
    """The offered kinds in protocol order (stable prompt, stable grammar)."""
    have = set(available)
    return [k for k in order if k in have]
