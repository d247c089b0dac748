"""A Suricata EVE ``alert`` record as OPNsense's IDS writes it (fields per the EVE format in
``../shared/reference/opnsense-api.md``), shared by the parser and simulator tests."""

from __future__ import annotations

from typing import Any

SSH_SCAN_ALERT: dict[str, Any] = {
    "timestamp": "2025-03-01T10:15:02.123456+0000",
    "flow_id": 1234567890123456,
    "in_iface": "em0",
    "event_type": "alert",
    "src_ip": "198.51.100.23",
    "src_port": 51515,
    "dest_ip": "192.0.2.10",
    "dest_port": 22,
    "proto": "TCP",
    "alert": {
        "action": "allowed",
        "gid": 1,
        "signature_id": 2001219,
        "rev": 20,
        "signature": "ET SCAN Potential SSH Scan",
        "category": "Attempted Information Leak",
        "severity": 2,
    },
    "app_proto": "ssh",
}
