"""API keys the tests use (80-character base64, like OPNsense's)."""

from __future__ import annotations

from .app import Simulator

KEY = "w86XNZob/8Oq8aC5r0kbNarNtdpoQU781fyoeaOBQsBwkXUt+Kb1UdXH9Phz1WUjJm4+1tcR5p9BIDR1"
SECRET = "XeD26XVrJ5ilAc/EmglCRC+0j2e57tRsjHwFepOseySWLM53pJASeTA3OS9LTKVxdF9rRdL6PY+pfYSc"


def install_keys(sim: Simulator) -> None:
    """An admin key, a read-only user's key, and a key limited to aliases + firmware."""
    sim.keys.clear()
    sim.add_key(KEY, SECRET)
    sim.add_key("readonly", "ro-secret", user="auditor", readonly=True)
    sim.add_key("aliasonly", "ao-secret", privileges=["api/firewall/alias/*", "api/core/firmware/*"])
