"""The agent's settings: ``<state_dir>/agent.json`` (written at enrollment), overridden by flags."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fazai import wire
from fazai.config import SafetySettings


def default_state_dir() -> Path:
    """``/var/lib/fazai-agent`` as root, ``$XDG_DATA_HOME/fazai-agent`` otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/fazai-agent")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fazai-agent"


class AgentSettings(BaseModel):
    """What one agent needs to connect and what it allows."""

    model_config = ConfigDict(extra="forbid")

    node: str = ""
    gateway: str = Field(default="", description="wss://host:port of the fleet gateway")
    servers: list[str] = Field(
        default_factory=list,
        description="wss://host:port of every replica's gateway, tried in turn (default: [gateway])",
    )
    server_name: str | None = Field(default=None, description="TLS name to verify (default: the host)")
    capabilities: list[str] = Field(default_factory=lambda: list(wire.ACTION_KINDS))
    # Highest risk class the agent runs when the server asks; forbidden never runs.
    max_risk: Literal["read_only", "changes_state", "destructive"] = "destructive"
    safety: SafetySettings = Field(default_factory=SafetySettings)
    max_concurrent: int = Field(default=4, ge=1, le=256)
    max_output_bytes: int = Field(default=1 << 20, ge=1024)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    renew_fraction: float = Field(default=1 / 3, gt=0, lt=1, description="renew with this much life left")
    tools_dir: Path | None = None
    telemetry_s: float = Field(
        default=60.0, ge=0, description="seconds between telemetry samples pushed to the server (0: none)"
    )
    # Service telemetry (fazai.telemetry.systemd): units_failed and journal_errors always, and per
    # watched unit unit_active:NAME / unit_restarts:NAME. The argv prefixes are FazAI's own fixed
    # read-only commands; they are settings so a node can point them elsewhere (`systemctl --user`).
    service_telemetry: bool = Field(default=True, description="sample systemd units and journal errors")
    watch_units: list[str] = Field(
        default_factory=list, description="systemd units whose state and restarts are sampled, e.g. nginx"
    )
    systemctl: list[str] = Field(default_factory=lambda: ["systemctl"], min_length=1)
    journalctl: list[str] = Field(default_factory=lambda: ["journalctl"], min_length=1)

    @field_validator("watch_units")
    @classmethod
    def _unit_names(cls, v: list[str]) -> list[str]:
        from fazai.telemetry.systemd import UNIT_NAME

        bad = [u for u in v if not UNIT_NAME.match(u)]
        if bad:
            raise ValueError(f"not a systemd unit name: {', '.join(map(repr, bad))}")
        return v

    def gateways(self) -> list[str]:
        """The gateway URLs to dial, in order: ``servers`` (comma lists split), else ``gateway``."""
        urls = [u.strip() for item in self.servers for u in item.split(",") if u.strip()]
        return urls or ([self.gateway] if self.gateway else [])

    @classmethod
    def load(cls, state_dir: Path) -> AgentSettings:
        path = state_dir / "agent.json"
        if not path.exists():
            return cls()
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, OSError) as e:
            raise SystemExit(f"fazai-agent: {path} is not valid ({e}); fix it or enroll again") from e

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = state_dir / ".agent.json.tmp"
        tmp.write_text(self.model_dump_json(indent=2))
        os.replace(tmp, state_dir / "agent.json")
