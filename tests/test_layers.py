"""The dependency direction of ARCHITECTURE §5: nothing imports ``cli`` or ``server``, and the
inner layers (protocol, config) import no outer one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "fazai"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "fazai" or n.startswith("fazai.")}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py") if len(rel) > 1 or rel[0] != "__init__.py" else ""


def test_nothing_imports_cli_or_server() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        own = _package(path)
        for mod in _imports(path):
            top = mod.split(".")[1] if "." in mod else ""
            if top in ("cli", "server") and top != own:
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(sorted(bad))


def test_protocol_and_config_import_no_outer_layer() -> None:
    # config_sources is config's stdlib-only half (file locations, FAZAI_* merging), read by the CLI's
    # fast paths without pydantic: part of the config layer, and it imports nothing of FazAI.
    allowed = {"fazai", "fazai.protocol", "fazai.config", "fazai.config_sources"}
    for name in ("protocol.py", "config.py"):
        outer = _imports(SRC / name) - allowed
        assert not outer, f"{name} imports {sorted(outer)}"
    assert not _imports(SRC / "config_sources.py")


def test_safety_is_an_inner_layer() -> None:
    """The policy is used by agent, tools, OPNsense, the node agent and playbooks: it depends on none."""
    allowed = {"fazai", "fazai.protocol", "fazai.config"}
    bad = []
    for path in (SRC / "safety").rglob("*.py"):
        for mod in _imports(path):
            if mod not in allowed and not mod.startswith("fazai.safety"):
                bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(sorted(bad))
