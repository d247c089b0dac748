"""The secret values FazAI knows of, for redaction from the session log (``fazai.store.redact``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from fazai.config import Settings
from fazai.store.redact import Redactor

# Environment variables whose values are treated as secrets whatever FazAI's settings say.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_DEFAULT_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "FAZAI_DAEMON_TOKEN")


def _read(path: os.PathLike[str] | str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, ValueError):
        return ""


def known_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """value → label of every secret FazAI can name: token, OPNsense keys, API keys, DB password."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}

    def add(value: str | None, label: str) -> None:
        if value and value.strip():
            out.setdefault(value.strip(), label)

    add(_read(settings.daemon_token_file), "daemon token")
    try:
        fw = json.loads(_read(settings.paths.state_dir / "opnsense" / "secrets.json") or "{}")
    except ValueError:
        fw = {}
    if isinstance(fw, dict):
        for name, entry in fw.items():
            if isinstance(entry, dict):
                add(str(entry.get("key") or ""), f"OPNsense {name} API key")
                add(str(entry.get("secret") or ""), f"OPNsense {name} API secret")
    ai = settings.ai_provider
    key_envs = {*_DEFAULT_KEY_ENVS, settings.research.context7_api_key_env}
    for spec in (ai, *ai.fallback):
        if spec.api_key_env:
            key_envs.add(spec.api_key_env)
        for h, v in spec.headers.items():
            if _SECRET_NAME.search(h):
                add(v.split(" ", 1)[-1], f"[ai_provider] header {h}")
    if settings.kb.api_key_env:
        key_envs.add(settings.kb.api_key_env)
    for name, value in env.items():
        if name in key_envs or _SECRET_NAME.search(name):
            add(value, f"${name}")
    add(_db_password(settings.database_url), "database password")
    return out


def _db_password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:  # a malformed URL fails when the store opens, with its own message
        return None


def build_redactor(settings: Settings, environ: Mapping[str, str] | None = None) -> Redactor:
    """A :class:`Redactor` fed with :func:`known_secrets`."""
    return Redactor(known_secrets(settings, environ))
