"""Suricata EVE parsing and following a growing/rotating eve.json."""

from __future__ import annotations

import asyncio
import json

import pytest

from fazai.opnsense.alerts import parse_eve_line, parse_query_alerts_row, tail_eve
from opnsense_sim.eve import SSH_SCAN_ALERT

EVE = SSH_SCAN_ALERT


def test_parse_eve_alert_line():
    a = parse_eve_line(json.dumps(EVE))
    assert a is not None
    assert (a.signature_id, a.gid, a.rev, a.severity, a.category) == (
        2001219,
        1,
        20,
        2,
        "Attempted Information Leak",
    )
    assert (a.src_ip, a.src_port, a.dest_ip, a.dest_port, a.proto) == (
        "198.51.100.23",
        51515,
        "192.0.2.10",
        22,
        "TCP",
    )
    assert a.timestamp.utcoffset().total_seconds() == 0 and a.timestamp.microsecond == 123456
    assert a.source == "eve" and a.action == "allowed"
    assert "ET SCAN Potential SSH Scan" in a.one_line()
    assert a.event_data()["signature_id"] == 2001219


def test_non_alerts_and_bad_lines():
    assert parse_eve_line(json.dumps({**EVE, "event_type": "flow"})) is None
    assert parse_eve_line("") is None
    with pytest.raises(ValueError, match="not a JSON"):
        parse_eve_line("{broken")
    blocked = parse_eve_line(
        json.dumps(
            {**EVE, "timestamp": "2025-03-01T10:15:02.1+0100", "alert": {**EVE["alert"], "action": "blocked"}}
        )
    )
    assert blocked.action == "blocked" and blocked.timestamp.utcoffset().total_seconds() == 3600


def test_query_alerts_row():
    row = {k: v for k, v in EVE.items() if k != "alert"}
    row.update(
        alert="ET SCAN Potential SSH Scan",
        alert_sid=2001219,
        alert_action="allowed",
        filepos=48213,
        fileid="",
    )
    a = parse_query_alerts_row(row)
    assert (a.signature, a.signature_id, a.filepos, a.source, a.severity) == (
        "ET SCAN Potential SSH Scan",
        2001219,
        48213,
        "api",
        None,
    )


async def test_tail_follows_appends_and_rotation(tmp_path):
    path = tmp_path / "eve.json"
    path.write_text(json.dumps(EVE) + "\n")  # already there: not replayed unless from_start
    got = []

    async def consume():
        async for a in tail_eve(path, poll_s=0.01):
            got.append(a.signature_id)
            if len(got) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    with path.open("a") as f:
        f.write(json.dumps({**EVE, "event_type": "dns"}) + "\nnot json\n")
        f.write(json.dumps({**EVE, "alert": {**EVE["alert"], "signature_id": 1}}) + "\n")
    await asyncio.sleep(0.05)
    path.rename(tmp_path / "eve.json.1")  # rotation: a new file appears
    path.write_text(json.dumps({**EVE, "alert": {**EVE["alert"], "signature_id": 2}}) + "\n")
    await asyncio.wait_for(task, 5)
    assert got == [1, 2]
    assert [a.signature_id async for a in tail_eve(path, from_start=True, follow=False)] == [2]
