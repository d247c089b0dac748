"""Built-in tools: Python-defined tools that ship with FazAI (e.g. OPNsense operations).

A module that provides built-in tools exposes ``builtin_tools(settings) -> Iterable[BuiltinTool]``
and adds its dotted name to ``_BUILTIN_MODULES`` (one line per module keeps merges trivial).
:func:`make_registry` builds the registry every process uses: built-ins + the tools directory.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from fazai.config import Settings
from fazai.tools.registry import BuiltinTool, ToolRegistry

_BUILTIN_MODULES: list[str] = [
    "fazai.opnsense.agent_tools",
]


def load_builtins(settings: Settings, modules: Iterable[str] | None = None) -> list[BuiltinTool]:
    """Collect the built-in tools of every listed module (an import error surfaces at start)."""
    tools: list[BuiltinTool] = []
    for name in _BUILTIN_MODULES if modules is None else modules:
        module = importlib.import_module(name)
        tools.extend(module.builtin_tools(settings))
    return tools


def make_registry(settings: Settings) -> ToolRegistry:
    """The tool registry for these settings: built-ins plus ``<state_dir>/tools``."""
    return ToolRegistry(settings.paths.tools_dir, load_builtins(settings))
