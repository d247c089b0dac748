"""The node agent stays dependency-light: no numpy, torch, fastapi, sqlalchemy or the server side."""

from __future__ import annotations

import subprocess
import sys

from test_layers import SRC, _imports


def test_node_imports_only_its_allowed_rooms() -> None:
    allowed = (
        "fazai.node",
        "fazai.wire",
        "fazai.safety",
        "fazai.config",
        "fazai.targets.local",
        "fazai.targets.base",
        "fazai.telemetry.local",  # the /proc sampler fazaid uses for itself: one way to read a node
        "fazai.telemetry.systemd",  # service states and journal errors (fixed read-only commands)
    )
    bad = []
    for path in (SRC / "node").rglob("*.py"):
        for mod in _imports(path):
            if mod != "fazai" and not mod.startswith(allowed):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_agent_process_loads_no_heavy_module() -> None:
    code = (
        "import sys, fazai.node.__main__, fazai.node.conn, fazai.node.runner;"
        "heavy = [m for m in ('numpy', 'torch', 'fastapi', 'sqlalchemy', 'uvicorn', 'fazai.fleet') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
