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


def test_dom_ids_are_css_safe_and_distinct() -> None:
    assert render.dom_id("probe#1") == "probe_231" and render.dom_id(7) == "7"
    assert render.dom_id("a.b") != render.dom_id("a_b")
    ev = _ev("approval_required", action="probe#1", summary="x", risk="read_only", reasons=[], role="admin")
    out = render.event_html(ev, pending=True, may_approve=True)
    assert 'id="decide-s_1-probe_231"' in out and 'hx-target="#decide-s_1-probe_231"' in out
    assert 'approver role <strong class="role">admin</strong>' in out


def _node(**kw):  # type: ignore[no-untyped-def]
    from fazai.store.inventory import NodeRecord

    base = {"name": "web-01", "transport": "ssh", "org": "acme", "site": "paris", "group": "front",
            "address": "10.0.0.11", "tags": ["web"], "labels": {"env": HOSTILE}}  # fmt: skip
    return NodeRecord(**{**base, **kw})


def test_fleet_pages_escape_hostile_text() -> None:
    from fazai.telemetry.metrics import Point
    from fazai.web.sparkline import svg

    node = _node(
        facts={"os": {"pretty_name": HOSTILE}, "ports": [{"proto": "tcp", "address": HOSTILE, "port": 22,
               "process": HOSTILE}], "failed_units": [{"unit": HOSTILE}], "errors": {HOSTILE: HOSTILE}},
        facts_at="2026-12-04T00:00:00Z", version=HOSTILE,
    )  # fmt: skip
    rows = [{"node": node, "status": "seen", "alerts": 1}]
    out = render.page("fleet.html", who=None, csrf="", groups=[(HOSTILE, rows)],
                      totals={"nodes": 1, "online": 1, "offline": 0, "alerts": 1}, offline_after=90,
                      open_window_h=24, error=HOSTILE)  # fmt: skip
    assert "<script>" not in out and "<img" not in out and out.count("&lt;script&gt;") >= 3
    alert = {"last_seen": HOSTILE, "signature": HOSTILE, "signature_id": 1, "category": HOSTILE,
             "severity": 2, "src_ip": HOSTILE, "dest_ip": "10.0.0.11", "proto": "TCP", "count": 3,
             "source": HOSTILE}  # fmt: skip
    chart = svg([Point(0, 1.0), Point(60, 2.0, 0.5, 3.0)], label=HOSTILE)
    tabs = {
        "facts": {},
        "metrics": {"metric_node": HOSTILE, "metrics": [{"name": HOSTILE, "now": 1.0, "at": HOSTILE,
                                                         "min": 0.0, "max": 2.0, "n": 2, "chart": chart}]},
        "sessions": {"sessions": [{"id": "s_1", "goal": HOSTILE, "how": HOSTILE, "status": "done",
                                   "site": "acme/paris", "created_at": HOSTILE}]},
        "alerts": {"alerts": [alert]},
        "kb": {"kb": [{"id": "k", "title": HOSTILE, "status": HOSTILE, "sessions": ["s_1"],
                       "how": [HOSTILE]}]},
    }  # fmt: skip
    for tab, data in tabs.items():
        out = render.page("node.html", who=None, csrf="", node=node, status="seen", tab=tab,
                          tabs=list(tabs), open_window_h=24, **data)  # fmt: skip
        assert "<script>" not in out and "<img" not in out, tab
        assert "&lt;script&gt;" in out, tab
    assert "<polyline points=" in str(chart) and "<script" not in str(chart)
    runs = [{"session": "s_1", "playbook": HOSTILE, "trigger": {"summary": HOSTILE}, "site": "a/b",
             "status": "running", "started": HOSTILE,
             "waiting": [{"session": "s_1", "action": "x#1", "role": HOSTILE, "may": True}]}]  # fmt: skip
    books = {"playbooks": [{"name": HOSTILE, "trigger": HOSTILE, "site": HOSTILE, "steps": [HOSTILE],
                            "approvals": {HOSTILE: HOSTILE}, "enabled": True}],
             "errors": [HOSTILE]}  # fmt: skip
    out = render.page("playbooks.html", who=None, csrf="", runs=runs, books=books, pending=1)
    assert "<script>" not in out and "<img" not in out and out.count("&lt;script&gt;") >= 6
    assert 'id="decide-s_1-x_231"' in out


def test_sparkline_shapes() -> None:
    from fazai.telemetry.metrics import Point
    from fazai.web.sparkline import MAX_POINTS, svg

    assert "empty" in str(svg([]))
    flat = str(svg([Point(i, 5.0) for i in range(10)]))
    assert "polygon" not in flat and ",24.0" in flat  # a flat series is a line through the middle
    many = str(svg([Point(i, float(i % 7)) for i in range(10_000)]))
    assert many.split('<polyline points="')[1].split('"')[0].count(" ") == MAX_POINTS - 1
    band = str(svg([Point(0, 1.0, 0.0, 4.0), Point(60, 2.0, 1.0, 3.0)]))
    assert '<polygon class="band"' in band


def test_audit_page_says_what_the_anchor_found() -> None:
    from fazai.audit import VerifyResult

    missing = VerifyResult(False, 3, 4, "records after #3 are missing (anchor says #6): …", 6)
    out = render.page("audit.html", who=None, csrf="", records=[], verify=missing)
    assert "Chain broken at record 4: records after #3 are missing (anchor says #6)" in out
    altered = VerifyResult(False, 0, None, f"the anchor file {HOSTILE} was altered")
    out = render.page("audit.html", who=None, csrf="", records=[], verify=altered)
    assert "Chain broken: the anchor file" in out and "<script>" not in out
    ok = VerifyResult(True, 6, anchor=6, note=None)
    assert "Chain intact: 6 records, anchored at record 6." in render.page(
        "audit.html", who=None, csrf="", records=[], verify=ok
    )
