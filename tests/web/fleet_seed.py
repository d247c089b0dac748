"""A small fleet for the console's fleet pages: inventory nodes on two sites, a facts snapshot, metric
samples, Suricata alerts and sessions tied to a node — written through the stores' own APIs, with
hostile text wherever the data may carry text."""

from __future__ import annotations

import copy
import time
from typing import Any

from fazai.auth.policy import Scope
from fazai.auth.users import SessionScopes
from fazai.protocol import Event
from fazai.store import Store
from fazai.store.inventory import Inventory
from fazai.telemetry import EveIngest, MetricStore
from opnsense_sim.eve import SSH_SCAN_ALERT

HOSTILE = "<script>window.__xss='fleet'</script><img src=x onerror=\"window.__xss='img'\">"
OWN, OTHER = "acme/paris", "globex/berlin"


def eve(dest: str, signature: str, sid: int, src: str = "198.51.100.23") -> dict[str, Any]:
    rec = copy.deepcopy(SSH_SCAN_ALERT)
    rec.update({"src_ip": src, "dest_ip": dest,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000", time.gmtime())})  # fmt: skip
    rec["alert"].update({"signature": signature, "signature_id": sid})
    return rec


async def seed(store: Store) -> dict[str, str]:
    """Nodes web-01 (ssh, acme/paris, front), here (local, acme/paris) and db-02 (globex/berlin);
    what each page should show. Returns the ids of the seeded sessions."""
    engine = store.engine
    inv = Inventory(engine)
    await inv.add_node("web-01", transport="ssh", address="10.0.0.11", org="acme", site="paris",
                       group="front", tags=["web"], labels={"env": "prod"})  # fmt: skip
    await inv.add_node("here", transport="local", org="acme", site="paris")
    await inv.add_node("db-02", transport="ssh", address="10.1.0.12", org="globex", site="berlin")
    await inv.heartbeat("web-01")
    await inv.set_facts("web-01", {
        "os": {"pretty_name": f"Debian {HOSTILE}"}, "kernel": {"release": "6.1.0", "machine": "x86_64"},
        "cpu": {"cores": 4, "load1": 0.5, "load5": 0.4, "load15": 0.3},
        "memory": {"total": 8 << 30, "available": 3 << 30},
        "disks": [{"mount": "/", "use_pct": 85, "size": 40 << 30}],
        "ports": [{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": f"sshd{HOSTILE}"}],
        "failed_units": [{"unit": f"bad{HOSTILE}.service", "description": "x"}],
    })  # fmt: skip
    metrics = MetricStore(engine)
    now = time.time()
    for i in range(30):
        await metrics.record("web-01", {"disk_used_pct": 50 + i, "load1": (i % 5) / 2, HOSTILE: 1.0},
                             ts=now - (29 - i) * 60)  # fmt: skip
    await metrics.record("db-02", {"disk_used_pct": 10.0}, ts=now)
    ing = EveIngest(engine, "eve:/var/log/suricata/eve.json", window_s=60)
    ing.feed_record(eve("10.0.0.11", f"ET SCAN {HOSTILE}", 2001219))
    ing.feed_record(eve("10.0.0.11", "ET POLICY ssh on a web node", 2001220))
    ing.feed_record(eve("10.1.0.12", "ET SCAN the other site", 2001221))
    ing.feed_record(eve("192.0.2.99", "ET SCAN nobody's", 2001222))
    await ing.flush()
    scopes = SessionScopes(engine)
    out: dict[str, str] = {}
    for key, node, site, goal in (
        ("web", "web-01", OWN, f"check disk on web-01 {HOSTILE}"),
        ("db", "db-02", OTHER, "check the database node"),
    ):
        rec = await store.create_session(goal, status="done")
        await scopes.set(rec.id, Scope.parse(site))
        kb = [{"id": f"kb-{key}", "title": f"disk cleanup {HOSTILE}" if key == "web" else "db tuning",
               "snippet": "…", "status": "verified", "score": 0.9, "source": "learned"}]  # fmt: skip
        await store.append_events([
            Event(session=rec.id, seq=1, kind="node", data={"node": node, "target": node}),  # type: ignore[arg-type]
            Event(session=rec.id, seq=2, kind="context", data={"goal": goal, "kb": kb}),  # type: ignore[arg-type]
            Event(session=rec.id, seq=3, kind="done", data={"status": "success", "answer": "ok"}),  # type: ignore[arg-type]
        ])  # fmt: skip
        out[key] = rec.id
    return out
