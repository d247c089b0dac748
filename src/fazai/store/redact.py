"""Redaction of known secret values from events before they are stored (and so before replay,
SSE and ``--json`` see them).

The values come from the caller (``fazai.sessions.secrets``: the daemon token, OPNsense keys,
provider API keys, the database password). A command that prints one, or a model that repeats one,
leaves ``[redacted: <what>]`` in the log instead. Values shorter than :data:`MIN_SECRET_CHARS` are
ignored: redacting them would mangle ordinary text.

Known gap: a secret the model streams split across two ``token`` events is not caught (each event is
checked alone); the ``done`` answer, observations and command output are checked whole per event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fazai.protocol import Event

MIN_SECRET_CHARS = 8


class Redactor:
    """Replaces every occurrence of the known secret values in strings, dicts and lists."""

    def __init__(self, secrets: Mapping[str, str] | None = None):
        """``secrets``: value → label (what it is, e.g. ``"daemon token"``)."""
        self._labels = {v: k for v, k in (secrets or {}).items() if v and len(v) >= MIN_SECRET_CHARS}
        # Longest first, so a secret that contains another is replaced whole.
        values = sorted(self._labels, key=len, reverse=True)
        self._rx = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __bool__(self) -> bool:
        return self._rx is not None

    def __len__(self) -> int:
        return len(self._labels)

    def text(self, s: str) -> str:
        """``s`` with each known secret replaced by ``[redacted: <label>]``."""
        if self._rx is None or not s:
            return s
        return self._rx.sub(lambda m: f"[redacted: {self._labels[m.group(0)]}]", s)

    def value(self, obj: Any) -> Any:
        """A copy of ``obj`` (str / dict / list nesting) with every string redacted."""
        if self._rx is None:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj

    def event(self, ev: Event) -> Event:
        """Redact ``ev.data`` in place (the same object is then stored and published); ``ev``."""
        if self._rx is not None:
            ev.data = self.value(ev.data)
        return ev


# Kinds whose text arrives in pieces: a secret may straddle two events.
_STREAMED = frozenset({"token", "exec_log"})


def _stream_key(ev: Event) -> tuple[Any, ...] | None:
    if ev.kind not in _STREAMED or not isinstance(ev.data.get("text"), str):
        return None
    d = ev.data
    return (ev.kind, d.get("iteration"), d.get("action"), d.get("stream"))


class StreamRedactor:
    """Redacts secrets that straddle consecutive ``token`` / ``exec_log`` events of one stream.

    :meth:`feed` returns the events to store now. While a stream's text ends with the beginning of a
    known secret, that tail is held back and sent with the next piece of the same stream (merged into
    one event), or alone as soon as any other event comes (order is kept). A held tail is at most
    one secret long, so the live stream lags by a token at most, and only near a secret's prefix.
    """

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self._held: Event | None = None
        self._prefixes: list[str] = sorted(redactor._labels, key=len, reverse=True)

    def feed(self, ev: Event) -> list[Event]:
        """Events to store now, in order (possibly none, possibly the held tail first)."""
        if not self.redactor:
            return [ev]
        key = _stream_key(ev)
        out: list[Event] = []
        if self._held is not None:
            if key is not None and key == _stream_key(self._held):
                ev.data = {**ev.data, "text": self._held.data["text"] + ev.data["text"]}
                ev.ts = self._held.ts
                self._held = None
            else:
                out += self.flush()
        if key is None:
            return [*out, self.redactor.event(ev)]
        text = self.redactor.text(ev.data["text"])
        keep = self._held_tail(text)
        if keep:
            tail = Event(session=ev.session, kind=ev.kind, ts=ev.ts, data={**ev.data, "text": text[-keep:]})
            self._held = tail
            text = text[:-keep]
        if text:
            ev.data = self.redactor.value({**ev.data, "text": text})
            out.append(ev)
        return out

    def flush(self) -> list[Event]:
        """The held tail (redacted as it is), if any."""
        held, self._held = self._held, None
        return [self.redactor.event(held)] if held is not None else []

    def _held_tail(self, text: str) -> int:
        # The longest end of ``text`` that a secret begins with (a secret may be on its way).
        best = 0
        for s in self._prefixes:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best
