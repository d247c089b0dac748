"""Where FazAI's files live and how the TOML file and ``FAZAI_*`` variables merge (stdlib only).

:mod:`fazai.config` validates the result into :class:`~fazai.config.Settings`; the CLI's fast paths
(:mod:`fazai.cli.fast`) read a few keys of the same merged data without importing pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _is_root() -> bool:
    return os.geteuid() == 0


def default_config_file() -> Path:
    """Where the TOML settings file lives when ``$FAZAI_CONFIG`` is not set."""
    if _is_root():
        return Path("/etc/fazai/fazai.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "fazai" / "fazai.toml"


def default_state_dir() -> Path:
    """Persistent state: models, session store, knowledge base, generated tools."""
    if _is_root():
        return Path("/var/lib/fazai")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fazai"


def default_runtime_dir() -> Path:
    """Sockets and pid files: ``/run/fazai`` as root, ``$XDG_RUNTIME_DIR/fazai`` otherwise."""
    if _is_root():
        return Path("/run/fazai")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/fazai-{os.getuid()}"
    return Path(base) / "fazai"


ENV_PREFIX = "FAZAI_"


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``FAZAI_AGENT__MAX_ITERATIONS=5`` → ``{"agent": {"max_iterations": "5"}}``.

    Values stay strings; pydantic coerces them. Lists accept JSON (``'["read_only"]'``)
    or a comma-separated string.
    """
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    v = value.strip()
    if v.startswith("[") or v.startswith("{"):
        import json

        try:
            return json.loads(v)
        except ValueError:
            return value
    return value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged
