"""Every event fragment and page escapes what it shows (goals, commands, output, answers)."""

from __future__ import annotations

from fazai.protocol import Event
from fazai.web import render

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'&"


def _ev(event_kind: str, **data) -> Event:  # type: ignore[no-untyped-def]
    return Event(session="s_1", seq=1, kind=event_kind, data=data)  # type: ignore[arg-type]


def test_fragments_escape_hostile_text() -> None:
    cases = [
        _ev("token", text=HOSTILE, iteration=1),
        _ev("action", id=1, kind="shell", action={"action": "shell", "command": HOSTILE}),
        _ev("approval_required", action=1, summary=HOSTILE, risk="changes_state", reasons=[HOSTILE]),
        _ev("exec_log", action=1, stream="stdout", text=HOSTILE),
        _ev("observe", action=1, status="ok", text=HOSTILE),
        _ev("done", action=2, answer=HOSTILE, status="success"),
        _ev("error", reason="x", message=HOSTILE),
        _ev("ask", action=1, question=HOSTILE, options=[HOSTILE]),
        _ev("reply", action=1, answer=HOSTILE),
        _ev("context", goal=HOSTILE),
    ]
    for ev in cases:
        out = render.event_html(ev, pending=True, may_approve=True)
        assert "<script>" not in out and "<img" not in out, (ev.kind, out)
        assert "&lt;script&gt;" in out, (ev.kind, out)


def test_pages_escape_goals() -> None:
    out = render.page(
        "sessions.html",
        who=None,
        csrf="",
        sessions=[
            {"id": "s_1", "goal": HOSTILE, "site": "a/b", "status": "done", "updated_at": "", "live": False}
        ],
    )
    assert "<script>alert" not in out and "&lt;script&gt;alert" in out


def test_approve_buttons_only_when_pending_and_allowed() -> None:
    ev = _ev("approval_required", action=1, summary="touch x", risk="changes_state", reasons=[])
    assert "button" in render.event_html(ev, pending=True, may_approve=True)
    assert "button" not in render.event_html(ev, pending=True, may_approve=False)
    assert "button" not in render.event_html(ev, pending=False, may_approve=True)
