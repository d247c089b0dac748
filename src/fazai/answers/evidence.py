"""The evidence of a session: what its commands printed and the facts it started from.

Built from the session's own events (the log is the single source of truth), so the live loop, a
resumed run and the benchmark's re-check all see the same evidence. Only raw output counts: the
observation text FazAI wraps around it (``exit_code=0 duration=0.01s``, hints) is not evidence, and a
command that failed with empty output proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fazai.answers.values import Value, content_words, extract_values

MAX_SOURCE_CHARS = 200_000  # per source; more is kept in the log but not searched


@dataclass
class Source:
    """One piece of evidence: a command's output, the facts, or a tool's result."""

    ref: str  # "action 3", "action 3 cmd 1", "facts", "tool action 4"
    command: str = ""
    text: str = ""
    exit_code: int | None = None
    action: int | None = None

    @property
    def usable(self) -> bool:
        """Output that can ground a value: something was printed, and not only an error."""
        return bool(self.text.strip())

    @cached_property
    def lines(self) -> list[str]:
        return [ln for ln in self.text.splitlines() if ln.strip()]

    @cached_property
    def values(self) -> list[tuple[int, Value]]:
        """(line index, value) for every value in the output."""
        return [(i, v) for i, ln in enumerate(self.lines) for v in extract_values(ln)]

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def line_words(self) -> list[set[str]]:
        return [content_words(ln) for ln in self.lines]

    @cached_property
    def command_words(self) -> set[str]:
        return content_words(self.command.replace("-", " ").replace("/", " "))


@dataclass
class Evidence:
    """Accumulates a session's evidence from its events (:meth:`feed` every event, in order)."""

    question: str = ""
    _sources: dict[str, Source] = field(default_factory=dict)
    _commands: dict[tuple[int, int | None], str] = field(default_factory=dict)
    _stderr: dict[str, str] = field(default_factory=dict)

    def feed(self, kind: str, data: dict[str, Any]) -> None:
        """Take one event (its kind and data)."""
        if kind == "context":
            if data.get("goal"):
                self.question = str(data["goal"])
            if data.get("facts"):
                self._sources["facts"] = Source("facts", "system facts", str(data["facts"]), 0)
        elif kind == "action":
            self._record_commands(data)
        elif kind == "exec_log":
            src = self._source(data)
            if data.get("stream") == "stderr":
                self._stderr[src.ref] = self._stderr.get(src.ref, "") + str(data.get("text") or "")
            elif len(src.text) < MAX_SOURCE_CHARS:
                src.text += str(data.get("text") or "")
        elif kind == "exec_end":
            src = self._source(data)
            src.exit_code = _int(data.get("exit_code"))
            if src.exit_code == 0 and (err := self._stderr.get(src.ref)):
                src.text += ("\n" if src.text else "") + err  # e.g. `java -version` prints to stderr
        elif kind == "observe":
            self._observe(data)

    def feed_all(self, events: Iterable[Any]) -> Evidence:
        """Feed a sequence of events (objects with ``kind`` and ``data``)."""
        for e in events:
            self.feed(e.kind, e.data)
        return self

    @property
    def sources(self) -> list[Source]:
        """Every source that printed something, facts first."""
        return [s for s in self._sources.values() if s.usable]

    def _record_commands(self, data: dict[str, Any]) -> None:
        action = data.get("action") or {}
        aid = _int(data.get("id"))
        if aid is None or action.get("action") != "shell":
            return
        if action.get("command"):
            self._commands[(aid, None)] = str(action["command"])
        for i, c in enumerate(action.get("commands") or []):
            self._commands[(aid, i)] = str(c)

    def _source(self, data: dict[str, Any]) -> Source:
        aid, cmd = _int(data.get("action")), _int(data.get("cmd"))
        ref = f"action {aid}" + (f" cmd {cmd}" if cmd is not None else "")
        if ref not in self._sources:
            command = self._commands.get((aid or 0, cmd)) or str(data.get("command") or "")
            self._sources[ref] = Source(ref, command, action=aid)
        src = self._sources[ref]
        if not src.command and data.get("command"):
            src.command = str(data["command"])
        return src

    def _observe(self, data: dict[str, Any]) -> None:
        aid = _int(data.get("action"))
        results = data.get("results")
        if isinstance(results, list):  # question mode: cached/redundant results carry their output
            for r in results:
                if not isinstance(r, dict) or r.get("status") == "refused":
                    continue
                ref = f"action {aid} cmd {r.get('index')}"
                if ref in self._sources or not (r.get("cached") or r.get("redundant")):
                    continue
                text = str(r.get("output") or "")
                exit_code = _int(r.get("exit_code"))
                if exit_code == 0 and r.get("error"):
                    text += ("\n" if text else "") + str(r["error"])
                self._sources[ref] = Source(ref, str(r.get("command") or ""), text, exit_code, aid)
            return
        if data.get("kind") in ("use_tool", "research") and data.get("text"):
            ref = f"{data['kind']} action {aid}"
            self._sources[ref] = Source(ref, str(data["kind"]), str(data["text"]), 0, aid)


def _int(x: Any) -> int | None:
    try:
        return int(x) if x is not None else None
    except (TypeError, ValueError):
        return None
