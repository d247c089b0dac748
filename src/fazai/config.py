"""One typed settings object for FazAI.

Sources, lowest priority first: built-in defaults, the TOML file, then ``FAZAI_<SECTION>__<KEY>``
environment variables (e.g. ``FAZAI_WORKER__THREADS=4``). The file is ``$FAZAI_CONFIG`` when set,
otherwise ``/etc/fazai/fazai.toml`` for root and ``$XDG_CONFIG_HOME/fazai/fazai.toml`` for others.

A bad value fails at start with :class:`ConfigError`, whose message names the key and the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator

# Where files live and how FAZAI_* variables map to keys: stdlib only, so the CLI's fast paths
# (fazai.cli.fast) read the few keys they need without pydantic.
from fazai.config_sources import (  # noqa: F401 (re-exported)
    ENV_PREFIX,
    _env_overrides,
    _is_root,
    _merge,
    _parse_env_value,
    default_config_file,
    default_runtime_dir,
    default_state_dir,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathsSettings(_Section):
    """Where FazAI keeps things. Every path is configurable."""

    state_dir: Path = Field(default_factory=default_state_dir)
    runtime_dir: Path = Field(default_factory=default_runtime_dir)

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def tools_dir(self) -> Path:
        """Tools made on demand: ``_generated/<session>/`` and the operator's ``stable/``."""
        return self.state_dir / "tools"

    @property
    def worker_socket(self) -> Path:
        return self.runtime_dir / "worker.sock"


class ProviderSpec(_Section):
    """One model provider; ``[[ai_provider.fallback]]`` entries use the same shape."""

    provider: Literal["worker", "openai", "anthropic", "scripted"] = "worker"
    model: str = "qwen2.5-coder-0.5b"
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    api_key: str | None = Field(
        default=None, description="a vault reference, vault:NAME (see `fazai secrets`); wins over api_key_env"
    )
    timeout_s: float = Field(default=120.0, gt=0)
    script: Path | None = Field(default=None, description="scripted provider: JSON file of canned outputs")
    name: str | None = Field(
        default=None, description="label in Final.served_by; default '<provider>:<model>'"
    )
    first_token_timeout_s: float | None = Field(
        default=None, gt=0, description="fallback chain: pass to the next provider if no token by then"
    )
    llamacpp: bool = Field(
        default=False,
        description="openai provider: the endpoint is a llama.cpp server (send GBNF grammar, repeat_penalty)",
    )
    json_schema: bool = Field(
        default=True, description="openai provider: send JSON-schema constraints as response_format"
    )
    anthropic_version: str = Field(default="2023-06-01", description="anthropic provider: API version header")
    worker_args: list[str] = Field(
        default_factory=list,
        description="worker provider in a chain: extra fazai-worker arguments (e.g. --speculative draft)",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers (e.g. OpenRouter's HTTP-Referer)"
    )

    @field_validator("api_key")
    @classmethod
    def _vault_only(cls, v: str | None) -> str | None:
        # A key written into the file is readable by whoever reads the file (and `fazai config`).
        if v is not None and not v.startswith("vault:"):
            raise ValueError(
                "api_key must be a vault reference: store the key with `fazai secrets set NAME` "
                'and write api_key = "vault:NAME" (or use api_key_env)'
            )
        return v


class AIProviderSettings(ProviderSpec):
    """The primary provider, plus an ordered fallback chain (the seeds' external arbiter)."""

    temperature: float = Field(default=0.2, ge=0, le=2)
    top_p: float = Field(default=0.9, gt=0, le=1)
    repeat_penalty: float = Field(default=1.05, gt=0)
    max_tokens: int = Field(default=512, gt=0)
    fallback: list[ProviderSpec] = Field(default_factory=list)


class WorkerSettings(_Section):
    """The resident ``fazai-worker`` process."""

    socket: Path | None = Field(default=None, description="default: <runtime_dir>/worker.sock")
    model: str = Field(default="qwen2.5-coder-0.5b", description="catalog name or path to a .gguf")
    threads: int = Field(default=0, ge=0, description="0 = all cores")
    ctx_size: int = Field(default=8192, ge=512, description="context tokens per session (per slot)")
    slots: int = Field(default=4, ge=1, le=64)
    batch_size: int = Field(
        default=16,
        ge=8,
        le=2048,
        description="prompt batch; abort lands between batches, so small = fast abort",
    )
    cache_ram_mib: int = Field(default=1024, ge=0)
    system_prefix: str | None = Field(default=None, description="shared system prompt evaluated once")
    speculative: Literal["none", "draft", "ngram", "draft+ngram"] = Field(
        default="none",
        description="speculative decoding: a draft model proposes and/or n-gram prompt lookup",
    )
    draft_model: str | None = Field(default=None, description="catalog name or .gguf of the draft model")
    draft_max: int = Field(default=16, ge=1, le=64, description="tokens proposed per speculative step")
    autostart: bool = True
    startup_timeout_s: float = Field(default=120.0, gt=0)


class AgentSettings(_Section):
    """Limits of the think → act → observe loop."""

    max_iterations: int = Field(default=32, ge=1, le=1000)
    max_goal_chars: int = Field(default=20000, ge=100, description="longest goal accepted (HTTP 413 past it)")
    max_event_chars: int = Field(
        default=262144,
        ge=4096,
        description="longest text kept in one stored event (the rest is cut, said so)",
    )
    action_timeout_s: float = Field(default=300.0, gt=0)
    session_timeout_s: float = Field(default=3600.0, gt=0)
    max_format_errors: int = Field(default=3, ge=0)
    observation_head_chars: int = Field(default=2000, ge=100)
    observation_tail_chars: int = Field(default=2000, ge=100)
    history_budget_chars: int = Field(
        default=20000, ge=1000, description="history size before old observations are shortened in the prompt"
    )
    fallback_enabled: bool = True
    stream: Literal["sse"] = "sse"
    facts_budget_s: float = Field(
        default=3.0, ge=0, description="time budget for system facts at each new goal; 0 = no facts"
    )
    grounding: bool = Field(
        default=True, description="check a success answer's values against the session's evidence"
    )
    grounding_retries: int = Field(
        default=1, ge=0, le=5, description="times an ungrounded answer goes back to the model"
    )
    learn: bool = Field(
        default=True, description="draft an unverified KB item from the working commands of a successful run"
    )


class SafetySettings(_Section):
    """Which risk classes run without asking. Forbidden never runs."""

    auto_approve: list[Literal["read_only", "changes_state", "destructive"]] = Field(
        default_factory=lambda: ["read_only"]
    )
    extra_forbidden: list[str] = Field(default_factory=list, description="extra regexes that are forbidden")
    extra_read_only: list[str] = Field(
        default_factory=list,
        description="command names treated as read-only whatever their arguments (a site's status tool)",
    )

    @field_validator("auto_approve", mode="before")
    @classmethod
    def _never_opaque(cls, v: object) -> object:
        # Opaque commands (code the classifier cannot see) always need an operator: say so clearly.
        if isinstance(v, list) and any(x in {"opaque", "forbidden"} for x in v):
            raise ValueError(
                "[safety] auto_approve cannot list 'opaque' or 'forbidden': opaque commands always need an "
                "operator's approval and forbidden ones never run; remove them"
            )
        return v

    @field_validator("auto_approve")
    @classmethod
    def _read_only_always(cls, v: list[str]) -> list[str]:
        return sorted(set(v) | {"read_only"})


class KBSettings(_Section):
    """Knowledge base: embedded Qdrant by default, a server by URL."""

    enabled: bool = Field(default=True, description="give sessions KB context, commit_kb and learning")
    url: str | None = Field(default=None, description="Qdrant server URL; empty = embedded store")
    api_key_env: str | None = None
    collection: str = "fazai_kb"
    top_k: int = Field(default=4, ge=0, le=50)
    token_budget: int = Field(default=600, ge=0)
    path: Path | None = Field(default=None, description="embedded store folder; default: <state_dir>/kb")
    embedding_model_dir: Path | None = Field(
        default=None, description="all-MiniLM-L6-v2 folder; default: installed into <state_dir>/assets"
    )
    verified_boost: float = Field(default=0.1, ge=0, le=1, description="added to a verified item's score")
    min_score: float = Field(default=0.25, ge=-1, le=1, description="hits below this similarity are dropped")
    import_starter: bool = Field(default=True, description="import the starter recipes on first start")
    answer_recipes: bool = Field(
        default=True, description="answer a question from a matching verified recipe before asking the model"
    )
    answer_threshold: float = Field(
        default=0.76,
        ge=0,
        le=1,
        description="least similarity for a recipe to answer (bench/bench_recipes.py)",
    )


class ResearchSettings(_Section):
    """The ``research`` action: which backends answer and how long each may take.

    Backends: ``kb`` (the knowledge base), ``docs`` (man pages, ``--help`` and ``/usr/share/doc`` on this
    machine), ``context7`` (library documentation from Context7), ``web`` (a SearXNG instance's JSON API).
    """

    enabled: list[Literal["kb", "docs", "context7", "web"]] = Field(
        default_factory=lambda: ["kb", "docs", "context7", "web"],
        description="backends that may be used; a backend also needs its own settings (e.g. searxng_url)",
    )
    timeout_s: float = Field(
        default=8.0, gt=0, description="time budget of one research action, all backends"
    )
    backend_timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one backend request")
    max_results: int = Field(default=5, ge=1, le=50, description="hits kept per backend")
    snippet_chars: int = Field(default=600, ge=80, description="longest snippet kept per hit")
    context7_url: str = Field(default="https://context7.com", description="Context7 base URL")
    context7_api_key_env: str = Field(
        default="CONTEXT7_API_KEY", description="environment variable holding the Context7 API key"
    )
    searxng_url: str | None = Field(
        default=None, description="SearXNG base URL (its settings must allow format=json); empty = no web"
    )
    docs_max_bytes: int = Field(default=65536, ge=1024, description="most bytes read per local document")


class ToolsSettings(_Section):
    """Tools made on demand (``tool_spec`` / ``use_tool``)."""

    run_timeout_s: float = Field(default=60.0, gt=0, description="default time limit of one use_tool run")
    validate_timeout_s: float = Field(default=20.0, gt=0, description="time limit of each validation step")
    sandbox: Literal["auto", "bwrap", "none"] = Field(
        default="auto",
        description="where declared tests run: bwrap when present (auto), or a plain subprocess",
    )
    max_output_chars: int = Field(default=20000, ge=1000, description="largest tool result kept")


class DaemonSettings(_Section):
    """The ``fazaid`` HTTP daemon."""

    host: str = "127.0.0.1"
    port: int = Field(default=3120, ge=1, le=65535)
    database_url: str | None = Field(default=None, description="default: sqlite in the state dir")
    migrate: Literal["auto", "check"] | None = Field(
        default=None,
        description="auto: upgrade the schema at start; check: refuse a schema that is behind "
        "(default: auto on SQLite, check on PostgreSQL, where `fazai store migrate` upgrades it once)",
    )
    replica_id: str | None = Field(default=None, description="this replica's name (default: the hostname)")
    heartbeat_s: float = Field(default=5.0, gt=0, description="how often a replica says it is alive")
    token_file: Path | None = Field(default=None, description="default: <state_dir>/daemon.token")
    require_token: bool = Field(
        default=True,
        description="every request but /healthz needs `Authorization: Bearer <token file>`; "
        "may be false only on a loopback bind",
    )
    sse_queue_size: int = Field(
        default=10000, ge=10, description="events an SSE client may fall behind before it is dropped"
    )
    sse_send_timeout_s: float = Field(
        default=60.0, gt=0, description="an SSE client that accepts nothing for this long is disconnected"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: int = Field(
        default=1048576, ge=1024, description="largest HTTP request body accepted (HTTP 413 past it)"
    )
    client_reconnect_s: float = Field(
        default=10.0, ge=0, description="how long the CLI retries a daemon whose connection broke"
    )
    disk_reserve_mib: float = Field(
        default=8.0,
        ge=0,
        description="disk space set aside next to a SQLite store, given up when the disk fills so a "
        "session can record why it stopped (0 = none)",
    )
    log_file: Path | None = Field(
        default=None, description="also write the JSON log to this file (created 0600); default: stderr only"
    )


class FleetSettings(_Section):
    """The agent gateway in fazaid: enrollment and the mTLS WebSocket listener (docs/fleet.md)."""

    enabled: bool = Field(default=False, description="run the gateway and enrollment listeners in fazaid")
    host: str = Field(default="127.0.0.1", description="listen address of both fleet listeners")
    gateway_port: int = Field(default=3121, ge=0, le=65535, description="WSS with client certificates")
    enroll_port: int = Field(default=3122, ge=0, le=65535, description="TLS enrollment (bootstrap tokens)")
    server_names: list[str] = Field(
        default_factory=list, description="DNS names / IPs agents dial (in the server certificate)"
    )
    cert_days: float = Field(default=30, gt=0, le=825, description="lifetime of a node certificate")
    require_approval: bool = Field(default=False, description="enrollments wait for `fazai nodes approve`")
    heartbeat_s: float = Field(default=15.0, gt=0, description="how often agents send a heartbeat")
    credits: int = Field(default=64, ge=1, le=100000, description="agent frames in flight per connection")
    max_frame_bytes: int = Field(default=1 << 20, ge=4096, description="largest frame accepted")
    max_output_bytes: int = Field(default=1 << 20, ge=1024, description="output kept per action")
    max_concurrent: int = Field(default=16, ge=1, le=1024, description="actions running at once per node")
    revocation_poll_s: float = Field(default=1.0, gt=0, description="how often revocations are checked")
    down_after_s: float = Field(
        default=30.0,
        gt=0,
        description="a node disconnected this long, on no replica, is 'down' for node_state playbooks",
    )
    ca_dir: Path | None = Field(
        default=None,
        description="folder of the fleet CA (default <state_dir>/fleet); replicas share one (docs/scale.md)",
    )
    relay_wait_s: float = Field(
        default=60.0, gt=0, description="how long a replica keeps trying to reach the one holding a node"
    )
    org_max_concurrent: int = Field(
        default=0, ge=0, description="actions running at once per organisation, all its nodes; 0 = no cap"
    )
    org_limits: dict[str, NonNegativeInt] = Field(
        default_factory=dict, description="per-organisation caps overriding org_max_concurrent"
    )
    org_max_queued: int = Field(
        default=0, ge=0, description="actions waiting per organisation before more are refused; 0 = no cap"
    )


class BusSettings(_Section):
    """NATS JetStream between replicas (docs/scale.md); empty ``url`` = one replica, no bus."""

    url: str = Field(default="", description="nats://host:4222 (comma-separated for a cluster)")
    stream: str = Field(default="FAZAI_EVENTS", pattern=r"^[A-Za-z0-9_-]+$")
    subject_prefix: str = Field(default="fazai.events", pattern=r"^[A-Za-z0-9_.-]+$")
    control_prefix: str = Field(
        default="fazai.control", pattern=r"^[A-Za-z0-9_.-]+$", description="replies/aborts between replicas"
    )
    max_age_s: float = Field(default=7 * 86400.0, gt=0, description="how long the stream keeps events")
    retry_max_s: float = Field(default=5.0, gt=0, description="longest wait between reconnect attempts")


class AskSettings(_Section):
    """``fazai ask``: the question mode (seed defaults)."""

    max_iterations: int = Field(default=5, ge=1, le=100)
    max_time_s: float = Field(default=30.0, gt=0)
    command_timeout_s: float = Field(default=15.0, gt=0)
    cache_enabled: bool = True
    cache_ttl_s: float = Field(default=300.0, ge=0)
    debug: bool = False
    # Verified, read-only knowledge-base recipes that fit the question, shown as the commands to start
    # from (fazai.agent.ask_policy.ReadOnlyHints); below kb_min_score (cosine) a recipe is not shown.
    kb_context: bool = True
    kb_min_score: float = Field(default=0.45, ge=0.0, le=1.0)
    # Each question gets a private scratch dir under the state dir (the only place it may write).
    scratch: bool = True


class SSHSettings(_Section):
    """The ``ssh`` target: how FazAI logs in to nodes that have no ``fazai-agent``."""

    known_hosts: Path | None = Field(
        default=None,
        description="host keys FazAI trusts (OpenSSH format); default: <state_dir>/ssh/known_hosts",
    )
    key: Path | None = Field(
        default=None, description="private key to log in with; default: <state_dir>/ssh/id_ed25519"
    )
    user: str = Field(default="root", min_length=1, description="login user when the node names none")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="TCP connect + login time limit")
    keepalive_s: float = Field(
        default=15.0, gt=0, description="keepalive interval (3 missed = connection dropped)"
    )
    max_output_bytes: int = Field(
        default=8 * 2**20, ge=4096, description="output kept per stream; past it the command is stopped"
    )


class NodesSettings(_Section):
    """The inventory and targeting (``--node`` / ``--nodes``)."""

    fanout_concurrency: int = Field(default=8, ge=1, le=1000, description="nodes worked on at once")
    offline_after_s: float = Field(
        default=90.0, gt=0, description="an agent node with no heartbeat for this long is offline"
    )


class OPNsenseSettings(_Section):
    """The OPNsense connector (``fazai opnsense``, the ``opnsense.*`` agent tools)."""

    never_block: list[str] = Field(
        default_factory=list,
        description="addresses/networks no block may cover (besides the firewall, this host, the "
        "operator's SSH client and the gateways, which are always protected)",
    )

    @field_validator("never_block", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v


class TelemetrySettings(_Section):
    """``[telemetry]``: EVE files the daemon follows, local sampling, dedup, downsampling, retention."""

    eve_files: list[Path] = Field(
        default_factory=list, description="Suricata eve.json files fazaid follows (alerts → playbooks)"
    )
    eve_from_start: bool = Field(default=False, description="also ingest what the files hold at start")
    poll_s: float = Field(default=0.05, gt=0, le=10, description="how often a followed file is checked")
    dedup_window_s: float = Field(
        default=60.0, ge=0, description="same signature + source within it = one alert"
    )
    sample_interval_s: float = Field(default=15.0, ge=0, description="local facts sampling period (0 = off)")
    firewalls: list[str] = Field(
        default_factory=list,
        description="registered firewalls sampled as nodes fw:<name> (interfaces, gateways)",
    )
    firewall_interval_s: float = Field(default=30.0, gt=0, description="firewall sampling period")
    alert_firewalls: list[str] = Field(
        default_factory=list, description="registered firewalls whose IDS alerts are polled (queryAlerts)"
    )
    alert_poll_s: float = Field(default=5.0, gt=0, description="queryAlerts polling period")
    raw_retention_s: float = Field(default=6 * 3600.0, gt=0, description="raw samples older are rolled up")
    rollup_step_s: int = Field(default=300, ge=1, description="rollup bucket width")
    rollup_retention_s: float = Field(default=30 * 86400.0, gt=0, description="rollups older are deleted")


class PlaybookNode(_Section):
    """A node playbooks act on: this machine, or a network namespace of it."""

    kind: Literal["local", "netns"] = "local"
    netns: str | None = Field(default=None, description="netns: path of the namespace (/run/netns/NAME)")


class PlaybookSettings(_Section):
    """``[playbooks]``: where playbook files live and what they may never block."""

    enabled: bool = True
    dir: Path | None = Field(
        default=None, description="folder of *.yaml playbooks; default: <state_dir>/playbooks"
    )
    management: list[str] = Field(default_factory=list, description="management networks (never blocked)")
    operators: list[str] = Field(default_factory=list, description="operators' addresses (never blocked)")
    gateways: list[str] = Field(
        default_factory=list, description="gateways (never blocked; local ones are found)"
    )
    detect_local: bool = Field(default=True, description="also protect this machine's addresses and gateways")
    nodes: dict[str, PlaybookNode] = Field(
        default_factory=lambda: {"local": PlaybookNode()}, description="nodes steps may target, by name"
    )


class Settings(_Section):
    """Everything FazAI reads from its configuration."""

    paths: PathsSettings = Field(default_factory=PathsSettings)
    ai_provider: AIProviderSettings = Field(default_factory=AIProviderSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    kb: KBSettings = Field(default_factory=KBSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    ask: AskSettings = Field(default_factory=AskSettings)
    ssh: SSHSettings = Field(default_factory=SSHSettings)
    nodes: NodesSettings = Field(default_factory=NodesSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    opnsense: OPNsenseSettings = Field(default_factory=OPNsenseSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    playbooks: PlaybookSettings = Field(default_factory=PlaybookSettings)

    # Where these settings came from, for error messages and `fazai config`.
    source: Path | None = Field(default=None, exclude=True)

    @property
    def worker_socket(self) -> Path:
        return self.worker.socket or self.paths.worker_socket

    @property
    def daemon_token_file(self) -> Path:
        """The daemon's bearer-token file (``[daemon] token_file`` or ``<state_dir>/daemon.token``)."""
        return self.daemon.token_file or self.paths.state_dir / "daemon.token"

    @property
    def disk_reserve_bytes(self) -> int:
        """``[daemon] disk_reserve_mib`` in bytes."""
        return int(self.daemon.disk_reserve_mib * 1024 * 1024)

    @property
    def ssh_known_hosts(self) -> Path:
        """FazAI's known_hosts file (``[ssh] known_hosts`` or ``<state_dir>/ssh/known_hosts``)."""
        return self.ssh.known_hosts or self.paths.state_dir / "ssh" / "known_hosts"

    @property
    def ssh_key(self) -> Path:
        """The SSH login key (``[ssh] key`` or ``<state_dir>/ssh/id_ed25519``)."""
        return self.ssh.key or self.paths.state_dir / "ssh" / "id_ed25519"

    @property
    def database_url(self) -> str:
        """The session store URL (``[daemon] database_url`` or SQLite in the state dir)."""
        return self.daemon.database_url or f"sqlite+aiosqlite:///{self.paths.state_dir / 'fazai.db'}"


class ConfigError(Exception):
    """A configuration value is invalid; the message names the key and the file."""


def _describe(err: ValidationError, file: Path | None, env_keys: set[str]) -> str:
    lines = []
    upper = {k.upper(): k for k in env_keys}
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        # The variable that set this key or a section above it (a list item's loc ends in its index).
        loc = [str(p) for p in e["loc"]]
        env_name = next(
            (
                upper[n]
                for i in range(len(loc), 0, -1)
                if (n := ENV_PREFIX + "__".join(loc[:i]).upper()) in upper
            ),
            None,
        )
        where = f"environment variable {env_name}" if env_name else f"file {file or '(defaults)'}"
        got = e.get("input")
        lines.append(f"  [{key}] {e['msg']} (got {got!r}) — from {where}")
    return "invalid FazAI configuration:\n" + "\n".join(lines) + "\nfix the value(s) above and start again."


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load settings from the TOML file and ``FAZAI_*`` environment.

    A missing file is fine (defaults apply) unless it was named explicitly.
    Raises :class:`ConfigError` naming the key and the file on any bad value.
    """
    env = dict(os.environ if environ is None else environ)
    explicit = path is not None or "FAZAI_CONFIG" in env
    file = Path(path or env.get("FAZAI_CONFIG") or default_config_file())
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"cannot parse {file}: {e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"cannot read {file}: it is not valid UTF-8 (byte {e.start}: {e.reason}); "
                "save it as UTF-8 text"
            ) from e
        except OSError as e:
            raise ConfigError(f"cannot read {file}: {e}") from e
    elif explicit:
        raise ConfigError(f"configuration file {file} does not exist (set FAZAI_CONFIG or create it)")
    env_over = _env_overrides(env)
    merged = _merge(data, env_over)
    env_keys = {k for k in env if k.startswith(ENV_PREFIX)}
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_describe(e, file if file.exists() else None, env_keys)) from e
    settings.source = file if file.exists() else None
    return settings
