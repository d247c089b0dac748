"""``fazai playbook …``: check and what-if playbook files; list, start, approve and abort runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fazai.cli.client_types import ClientError

app = typer.Typer(
    help="Playbooks: declarative responses to alerts, metrics, schedules.", no_args_is_help=True
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Attach ``fazai playbook``."""
    root.add_typer(app, name="playbook")


def _settings() -> Any:
    from fazai.cli.main import settings_or_exit

    return settings_or_exit()


def _load(file: Path) -> Any:
    from fazai.playbooks import PlaybookError, load_playbook

    try:
        return load_playbook(file)
    except PlaybookError as e:
        err.print(f"[red]error:[/] {file} is not a valid playbook:", highlight=False)
        err.print(str(e), highlight=False, markup=False)
        raise typer.Exit(1) from e


def _read_alert(path: Path) -> dict[str, Any]:
    """An EVE record from a JSON file (one object) or the first alert line of an eve.json."""
    try:
        text = path.read_text()
    except OSError as e:
        err.print(f"[red]error:[/] cannot read {path}: {e.strerror}")
        raise typer.Exit(2) from e
    try:
        rec = json.loads(text)
    except ValueError:
        rec = None
        for line in text.splitlines():
            try:
                cand = json.loads(line)
            except ValueError:
                continue
            if isinstance(cand, dict) and cand.get("event_type") == "alert":
                rec = cand
                break
    if not isinstance(rec, dict):
        err.print(f"[red]error:[/] {path} holds no EVE alert record (a JSON object with event_type 'alert')")
        raise typer.Exit(2)
    return rec


@app.command("check")
def check(files: list[Path] = typer.Argument(..., help="playbook YAML files")) -> None:
    """Validate playbook files; every problem is printed with its line."""
    bad = 0
    for f in files:
        from fazai.playbooks import PlaybookError, load_playbook

        try:
            pb = load_playbook(f)
        except PlaybookError as e:
            bad += 1
            err.print(str(e), highlight=False, markup=False)
            continue
        out.print(f"{f}: ok ({pb.name}: {pb.trigger.kind} trigger, {len(pb.steps)} steps)", highlight=False)
    raise typer.Exit(1 if bad else 0)


@app.command("test")
def test(
    file: Path = typer.Argument(..., help="the playbook YAML file"),
    alert: Path | None = typer.Option(None, "--alert", help="an EVE alert record (JSON) or eve.json"),
    metric: str | None = typer.Option(None, "--metric", help="NAME=VALUE for a metric trigger"),
    node: str = typer.Option("local", "--node", help="the node of --metric / a node_state trigger"),
    state: str | None = typer.Option(None, "--state", help="the new state for a node_state trigger"),
    label: list[str] = typer.Option(
        [], "--label", help="KEY=VALUE the --metric sample carries ({metric.labels.KEY}); repeat"
    ),
    as_json: bool = typer.Option(False, "--json", help="the plan as JSON"),
) -> None:
    """What-if: print exactly what the playbook would do for this trigger — on which targets, with
    which approvals — and change nothing."""
    from fazai.opnsense.alerts import parse_eve_record
    from fazai.playbooks.context import alert_context, metric_context, node_context, schedule_context
    from fazai.playbooks.match import alert_matches
    from fazai.playbooks.whatif import render_text, what_if
    from fazai.protocol import utcnow_iso
    from fazai.sessions.playbook_loop import build_env

    pb = _load(file)
    matched: bool | None = None
    if alert is not None:
        try:
            a = parse_eve_record(_read_alert(alert))
        except (KeyError, ValueError) as e:
            err.print(f"[red]error:[/] {alert}: not an EVE alert record: {e}")
            raise typer.Exit(2) from e
        assert a is not None
        ctx = alert_context(a, alert_id="(what-if)", source="what-if")
        matched = pb.trigger.alert is not None and alert_matches(pb.trigger.alert, a)
    elif metric is not None:
        name, _, value = metric.partition("=")
        try:
            v = float(value)
        except ValueError as e:
            err.print(f"[red]error:[/] --metric wants NAME=VALUE (e.g. disk_used_pct=95), not {metric!r}")
            raise typer.Exit(2) from e
        m = pb.trigger.metric
        threshold = (m.above if m.above is not None else m.below) if m else 0.0
        labels = dict(x.partition("=")[::2] for x in label)
        ctx = metric_context(node, name, v, float(threshold or 0), m.for_s if m else 0.0, labels)
        matched = (
            m is not None and m.name == name and (v > m.above if m.above is not None else v < (m.below or 0))
        )
    elif state is not None:
        ctx = node_context(node, None, state)
        matched = pb.trigger.node_state is not None and pb.trigger.node_state.to == state
    else:
        ctx = schedule_context(utcnow_iso())
        matched = None if pb.trigger.schedule is not None else False
    try:
        env = build_env(_settings())
    except ValueError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    plan = what_if(pb, ctx, env)
    if as_json:
        print(
            json.dumps(
                {"playbook": pb.name, "matched": matched, "steps": [p.to_dict() for p in plan]}, indent=2
            )
        )
    else:
        out.print(render_text(pb, ctx, plan, matched=matched), highlight=False, markup=False)
    raise typer.Exit(1 if any(p.refused for p in plan) else 0)


def _daemon(method: str, path: str, **kw: Any) -> Any:
    from fazai.cli.daemon_http import call

    try:
        return asyncio.run(call(_settings(), method, path, **kw))
    except ClientError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from e


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """The playbooks the daemon has loaded, and the files it could not load."""
    data = _daemon("GET", "/playbooks")
    if as_json:
        print(json.dumps(data, indent=2))
        return
    t = Table("name", "trigger", "steps", "enabled", title=f"playbooks in {data['dir']}")
    for p in data["playbooks"]:
        t.add_row(p["name"], p["trigger"], ", ".join(p["steps"]), "yes" if p["enabled"] else "no")
    out.print(t)
    for e in data["errors"]:
        err.print(f"[yellow]not loaded:[/] {e}", highlight=False)


@app.command("reload")
def reload() -> None:
    """Make the daemon re-read the playbook folder."""
    data = _daemon("POST", "/playbooks/reload")
    out.print(f"{len(data['playbooks'])} loaded, {len(data['errors'])} not loaded")
    for e in data["errors"]:
        err.print(f"[yellow]not loaded:[/] {e}", highlight=False)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="a loaded playbook"),
    alert: Path | None = typer.Option(None, "--alert", help="an EVE alert record to run it for"),
) -> None:
    """Start a playbook run in the daemon now (follow it with `fazai replay SESSION`)."""
    body: dict[str, Any] = {"alert": _read_alert(alert)} if alert else {}
    data = _daemon("POST", f"/playbooks/{name}/run", json=body)
    print(data["session"])


@app.command("runs")
def runs(
    limit: int = typer.Option(20, "--limit", min=1), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Recent playbook runs (each one a session: `fazai replay SESSION`)."""
    data = _daemon("GET", "/playbooks/runs", params={"limit": limit})
    if as_json:
        print(json.dumps(data, indent=2))
        return
    t = Table("session", "playbook", "status", "trigger", "summary")
    for r in data:
        t.add_row(r["session"], r["playbook"], r["status"], str(r["trigger"].get("summary", ""))[:60],
                  (r["summary"] or "")[:80])  # fmt: skip
    out.print(t)


@app.command("approve")
def approve(
    session: str = typer.Argument(...),
    action: str | None = typer.Option(None, "--action", help="which approval (default: the one waiting)"),
    deny: bool = typer.Option(False, "--deny", help="refuse instead"),
) -> None:
    """Approve (or --deny) the step a playbook run waits on."""
    if action is None:
        info = _daemon("GET", f"/agent/sessions/{session}")
        waiting = [w for w in info.get("waiting_for", []) if w["kind"] == "approval"]
        if not waiting:
            err.print(f"[red]error:[/] {session} waits for no approval (status {info.get('status')})")
            raise typer.Exit(1)
        action = str(waiting[0]["action"])
    _daemon("POST", "/agent/reply", json={"session": session, "action": action, "approved": not deny})
    out.print(f"{'denied' if deny else 'approved'} {action} of {session}")


@app.command("abort")
def abort(session: str = typer.Argument(...)) -> None:
    """Stop a playbook run."""
    data = _daemon("POST", "/agent/abort", json={"session": session})
    out.print(f"{session}: {'aborted' if data['aborted'] else 'was not running'}")
