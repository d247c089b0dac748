"""The system-operation writes (firmware update, config revert, critical service restarts) need an
operator's explicit approval, whatever the model, ``--yes`` or ``[safety] auto_approve`` say; and read
tools cannot be made to write. Real loop, safety policy, registry and use_tool executor against the
simulator over HTTP; only the model (scripted) and the operator (scripted) are doubles."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _agent_doubles import ScriptedInteraction
from fazai.agent.deps import AgentDeps
from fazai.agent.loop import run_agent
from fazai.agent.tool_executors import ToolServices, tool_executors
from fazai.cli.main import _register, app
from fazai.config import SafetySettings, Settings
from fazai.models.scripted import ScriptedProvider
from fazai.opnsense.tools import TOOLS, get_tool
from fazai.protocol import Event
from fazai.safety import SafetyPolicy
from fazai.tools.builtin import make_registry
from opnsense.conftest import registered_firewall
from opnsense_sim.keys import KEY, SECRET, install_keys

_register()
PKGS = [{"name": "opnsense", "current_version": "26.1", "new_version": "26.1.2", "repository": "OPNsense"}]
# Endpoints that change the firewall (what no read tool may ever reach).
WRITES = (
    "core/firmware/check", "core/firmware/update", "core/firmware/upgrade", "core/backup/revertBackup",
    "core/service/restart", "diagnostics/interface/carpStatus", "/set", "/add", "/del", "/toggle",
    "apply", "reconfigure", "savepoint", "alias_util/add", "alias_util/delete", "alias_util/flush",
)  # fmt: skip


def act(kind: str, **fields) -> str:
    return json.dumps({"action": kind, **fields})


def writes(sim) -> list[str]:
    return [p for m, p in sim.requests if m == "POST" and any(w in p for w in WRITES)]


@pytest.fixture(params=["25.7", "26.7"])
def firewall(request, servers, tmp_path: Path):
    return registered_firewall(servers, request.param, tmp_path)


def unattended(settings: Settings) -> SafetyPolicy:
    """The most permissive unattended policy there is: --yes, and every class auto-approved."""
    everything = ["read_only", "changes_state", "destructive"]
    return SafetyPolicy(settings.safety.model_copy(update={"auto_approve": everything}), assume_yes=True)


async def run(settings: Settings, script: list[str], policy: SafetyPolicy, operator) -> list[Event]:
    services = ToolServices(registry=make_registry(settings), tools=settings.tools)
    deps = AgentDeps(
        provider=ScriptedProvider(script), policy=policy,
        executors=tool_executors(services), tools=services.catalog,
    )  # fmt: skip
    return [
        e
        async for e in run_agent(
            "look after the firewall",
            session_id="s_ops",
            deps=deps,
            interaction=operator,
            abort=asyncio.Event(),
        )
    ]


def of(events: list[Event], kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


def tool_obs(events: list[Event]) -> list[dict]:
    return [d for d in of(events, "observe") if d["kind"] == "use_tool"]


def checked(sim) -> None:
    """The firewall has a pending update found by a check, and a stored history to revert to."""
    sim.ops.available = {"kind": "update", "packages": PKGS, "needs_reboot": "1"}
    sim.ops.product_check = None
    sim.handle("POST", "/api/core/firmware/status", b"", _auth(), b"{}")  # a synchronous probe
    alias = {"alias": {"name": "x", "type": "host", "content": "10.0.0.9"}}
    sim.handle("POST", "/api/firewall/alias/addItem", b"", _auth(), json.dumps(alias).encode())
    sim.requests.clear()


def _auth() -> dict[str, str]:
    import base64

    token = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    return {"authorization": f"Basic {token}", "content-type": "application/json"}


CRITICAL_CALLS = [
    ("opnsense.firmware_update", {}),
    ("opnsense.firmware_update", {"kind": "update", "wait_s": 5}),
    ("opnsense.config_revert", {"backup": "FIRST"}),
    ("opnsense.service_restart", {"service": "pf"}),
    ("opnsense.service_restart", {"service": " PF/"}),  # a disguised name is still pf
    ("opnsense.service_restart", {"service": "webgui"}),
    ("opnsense.service_restart", {"service": "openssh"}),
]


@pytest.mark.parametrize(("tool", "args"), CRITICAL_CALLS, ids=[f"{t}:{a}" for t, a in CRITICAL_CALLS])
async def test_critical_system_writes_wait_for_an_operator_even_under_yes(firewall, tool, args):
    sim, settings = firewall
    checked(sim)
    if args.get("backup") == "FIRST":
        args = {"backup": sim_history(sim)[-1]}  # the oldest revision: a real revert
    operator = ScriptedInteraction(approve_result=False)
    script = [act("use_tool", name=tool, args=args), act("done", answer="done")]
    events = await run(settings, script, unattended(settings), operator)
    (approval,) = of(events, "approval_required")
    assert approval["operator_only"] is True and approval["risk"] == "destructive", approval
    assert any("security-critical" in r for r in approval["reasons"])
    assert approval["preview"]["dry_run"] is True  # the operator saw the plan first
    assert tool_obs(events)[-1]["status"] == "denied"
    assert writes(sim) == [] and sim.ops.updates_run == [] and sim.ops.restarts == []


def sim_history(sim) -> list[str]:
    from opnsense_sim.system_ops import history_ids

    return history_ids(sim)[::-1]


async def test_an_approved_revert_runs_backs_up_first_and_is_verified(firewall):
    sim, settings = firewall
    checked(sim)
    first = sim_history(sim)[-1]
    assert sim.cols["alias"].items
    operator = ScriptedInteraction(approve_result=True)
    call = act("use_tool", name="opnsense.config_revert", args={"backup": first})
    script = [call, act("done", answer="ok")]
    events = await run(settings, script, SafetyPolicy(settings.safety), operator)
    obs = tool_obs(events)[-1]
    assert obs["status"] == "ok", obs["text"]
    assert obs["result"]["verification"]["ok"] is True
    assert obs["result"]["data"]["backup_before"]  # a fresh backup of what was there
    assert sim.cols["alias"].items == {}
    assert [p for p in writes(sim) if "revertBackup" in p] == [f"/api/core/backup/revertBackup/{first}"]


async def test_routine_system_changes_run_under_yes(firewall):
    """A firmware check and restarting a non-critical service are changes_state: --yes runs them."""
    sim, settings = firewall
    sim.ops.available = {"kind": "update", "packages": PKGS}
    policy = SafetyPolicy(SafetySettings(), assume_yes=True)
    operator = ScriptedInteraction(approve_result=False)
    script = [
        act("use_tool", name="opnsense.firmware_check", args={"wait_s": 10}),
        act("use_tool", name="opnsense.service_restart", args={"service": "unbound"}),
        act("done", answer="ok"),
    ]
    events = await run(settings, script, policy, operator)
    assert operator.approvals == [] and not of(events, "approval_required")
    check, restart = tool_obs(events)
    assert check["status"] == "ok" and check["result"]["data"]["firmware"]["status"] == "update"
    assert check["result"]["verification"]["ok"]
    assert restart["status"] == "ok" and restart["result"]["verification"]["ok"]
    assert sim.ops.restarts == [("unbound", "")] and sim.ops.updates_run == []


HIDDEN_WRITES = [
    # A model asks for the write under a read tool's name: the read tool's schema refuses it.
    ("opnsense.firmware", {"kind": "update"}),
    ("opnsense.firmware_progress", {"action": "upgrade"}),
    ("opnsense.carp_status", {"status": "maintenance"}),
    ("opnsense.backup_history", {"backup": "config-1.xml", "revert": True}),
    ("opnsense.system", {"what": "restart"}),
    ("opnsense.backup", {"note": "x", "revert": "latest"}),
]


@pytest.mark.parametrize(("tool", "args"), HIDDEN_WRITES, ids=[t for t, _ in HIDDEN_WRITES])
async def test_a_write_asked_under_a_read_tool_name_is_refused(firewall, tool, args):
    sim, settings = firewall
    checked(sim)
    operator = ScriptedInteraction(approve_result=True)
    script = [act("use_tool", name=tool, args=args), act("done", answer="done")]
    events = await run(settings, script, unattended(settings), operator)
    obs = tool_obs(events)[-1]
    assert obs["status"] != "ok" and obs["risk"] == "read_only"
    assert "argument" in obs["text"]
    assert operator.approvals == [] and writes(sim) == []


async def test_no_read_only_tool_reaches_a_write_endpoint(firewall):
    """Every read_only tool, run with its defaults, only reads (the simulator's request log)."""
    sim, settings = firewall
    checked(sim)
    reads = [t.name for t in TOOLS if t.risk == "read_only" and t.name != "opnsense.backup"]
    script = [*(act("use_tool", name=n, args={}) for n in reads), act("done", answer="ok")]
    events = await run(settings, script, SafetyPolicy(settings.safety), ScriptedInteraction(False))
    assert {d["status"] for d in tool_obs(events)} == {"ok"}, [d["text"] for d in tool_obs(events)]
    assert len(tool_obs(events)) == len(reads) and writes(sim) == []


def test_policy_classes_of_the_system_tools():
    policy = SafetyPolicy(SafetySettings(auto_approve=["read_only", "changes_state", "destructive"]),
                          assume_yes=True)  # fmt: skip

    def verdict(name: str, args: dict) -> tuple[str, bool]:
        tool = get_tool(name)
        why = tool.critical(args) if tool.critical else None
        d = policy.check_risk(tool.risk, name, critical=why is not None, why=why)
        return d.verdict, d.needs_operator

    assert verdict("opnsense.carp_status", {}) == ("allow", False)
    assert verdict("opnsense.firmware_progress", {}) == ("allow", False)
    assert verdict("opnsense.firmware_check", {}) == ("allow", False)
    assert verdict("opnsense.service_restart", {"service": "unbound"}) == ("allow", False)
    for name, args in CRITICAL_CALLS:
        assert verdict(name, args) == ("ask", True), (name, args)


# ---------------------------------------------------------------------- the CLI
@pytest.fixture
def cli(servers, tmp_path, monkeypatch):
    sim, url = servers["26.1"]
    sim.reset()
    sim.requests.clear()
    install_keys(sim)
    monkeypatch.setenv("FAZAI_PATHS__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FAZAI_CONFIG", str(tmp_path / "fazai.toml"))
    (tmp_path / "fazai.toml").write_text("")
    runner = CliRunner()

    def go(*args: str, code: int = 0, input: str | None = None, env: dict[str, str] | None = None):
        r = runner.invoke(app, list(args), input=input, env=env)
        assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
        return r

    go("opnsense", "add", "fw1", url, env={"OPNSENSE_KEY": KEY, "OPNSENSE_SECRET": SECRET})
    return go, sim


def test_cli_firmware_update_asks_and_has_no_yes(cli):
    go, sim = cli
    sim.ops.available = {"kind": "update", "packages": PKGS, "needs_reboot": "1"}
    r = go("opnsense", "firmware", "check")
    assert "There is 1 update available" in r.stdout and "│ ***DONE***" in r.stdout
    assert "--yes" in go("opnsense", "firmware", "update", "--yes", code=2).stderr  # no such option
    r = go("opnsense", "firmware", "update", code=1)  # no answer (end of input): refused
    assert "REBOOTS" in r.stderr and "nothing was changed" in r.stderr
    go("opnsense", "firmware", "update", input="n\n", code=1)
    assert sim.ops.updates_run == [] and not [p for m, p in sim.requests if p.endswith("firmware/update")]
    r = go("opnsense", "firmware", "update", input="y\n")
    assert sim.ops.updates_run == ["update"] and "Upgrading opnsense" in r.stdout
    assert "rebooted" in r.stdout
    r = go("opnsense", "firmware", "progress", "--json")
    assert json.loads(r.stdout)["status"] == "reboot"


def test_cli_backup_revert_and_service_restart(cli):
    go, sim = cli
    go("opnsense", "alias", "ensure", "admins", "-c", "10.0.0.9")
    go("opnsense", "backup", "pull", "--note", "good")
    go("opnsense", "alias", "ensure", "admins", "-c", "10.0.0.66")
    hist = json.loads(go("opnsense", "backup", "history", "--json").stdout)
    assert len(hist) >= 3 and hist[0]["id"].startswith("config-")
    r = go("opnsense", "backup", "revert", "latest", "--dry-run")
    assert "would rollback config" in r.stdout and "10.0.0.66" in r.stdout
    assert "--yes" in go("opnsense", "backup", "revert", "latest", "--yes", code=2).stderr
    go("opnsense", "backup", "revert", "latest", input="n\n", code=1)
    assert [a["content"] for a in sim.cols["alias"].items.values()] == ["10.0.0.66"]
    r = go("opnsense", "backup", "revert", "nope", code=1)
    assert "no single backup matches 'nope'" in r.stderr
    r = go("opnsense", "backup", "revert", "latest", input="y\n")
    assert [a["content"] for a in sim.cols["alias"].items.values()] == ["10.0.0.9"]
    assert "to undo: fazai opnsense backup revert config-" in r.stdout
    journal = json.loads(go("opnsense", "journal", "--json").stdout)
    assert journal[-1]["action"] == "config_revert"
    # Services: a routine restart runs; pf asks (and --yes does not exist); an unknown name is clear.
    assert "unbound" in go("opnsense", "service", "list").stdout
    go("opnsense", "service", "restart", "unbound")
    assert "no service 'nosuch'" in go("opnsense", "service", "restart", "nosuch", code=1).stderr
    r = go("opnsense", "service", "restart", "pf", code=1)
    assert "staged rule changes go live" in r.stderr
    assert "--yes" in go("opnsense", "service", "restart", "pf", "--yes", code=2).stderr
    assert sim.ops.restarts == [("unbound", "")]
    go("opnsense", "service", "restart", "pf", input="y\n")
    assert sim.ops.restarts == [("unbound", ""), ("pf", "")]
    r = go("opnsense", "carp")
    assert "no CARP virtual IPs" in r.stdout


async def test_an_approved_update_streams_its_progress_and_is_verified(firewall):
    sim, settings = firewall
    checked(sim)  # a pending update that needs a reboot
    operator = ScriptedInteraction(approve_result=True)
    call = act("use_tool", name="opnsense.firmware_update", args={"wait_s": 20})
    events = await run(settings, [call, act("done", answer="ok")], SafetyPolicy(settings.safety), operator)
    (approval,) = of(events, "approval_required")
    assert "REBOOTS" in approval["summary"] and approval["operator_only"] is True
    obs = tool_obs(events)[-1]
    assert obs["status"] == "ok", obs["text"]
    assert obs["result"]["verification"] == {
        "ok": True,
        "method": "the update job's end (and, after a reboot, the API answering on a new connection)",
        "status": "reboot",
        "api_back": True,
    }
    logged = " ".join(d.get("text", "") for d in of(events, "exec_log"))
    assert "Upgrading opnsense from 26.1 to 26.1.2" in logged and "***REBOOT***" in logged
    assert sim.ops.updates_run == ["update"] and sim.ops.reboots == 1
