"""Renders a session's events for a terminal (Rich) or as ND-JSON. Reads only events.

The same code draws a live run (daemon or embedded) and a replay from the log: nothing here knows
where the events come from.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from fazai.protocol import Event

UNVERIFIED = "unverified"  # a done whose answer the session's evidence does not support


def _ts(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def action_of(data: dict[str, Any]) -> dict[str, Any]:
    """The action dict inside an ``action`` event (``data.action`` as a dict, or data itself)."""
    inner = data.get("action")
    return inner if isinstance(inner, dict) else data


def action_kind(data: dict[str, Any]) -> str:
    a = action_of(data)
    kind = a.get("action") if isinstance(a.get("action"), str) else data.get("kind")
    return str(kind or "?")


@dataclass
class Stats:
    """What the one-line summary reports."""

    session: str = ""
    iterations: int = 0
    commands: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    status: str | None = None
    answer: str | None = None
    tokens: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        if self.first_ts and self.last_ts:
            return max(0.0, (self.last_ts - self.first_ts).total_seconds())
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "status": self.status,
            "iterations": self.iterations,
            "commands": self.commands,
            "seconds": round(self.seconds, 3),
            "tokens": self.tokens,
            "answer": self.answer,
        }


class Renderer:
    """Turns events into terminal output (or ND-JSON with ``json_mode``)."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        console: Console | None = None,
        out: TextIO | None = None,
        ask: bool = False,
        verbose: bool = True,
    ):
        self.json_mode = json_mode
        # Question mode: the answer, then the commands executed (dimmed); ``verbose`` (ask.debug)
        # also streams the model's tokens, the commands' output and the observations.
        self.ask = ask
        self.verbose = verbose or not ask
        self.executed: list[str] = []
        self.out = out or sys.stdout
        self.console = console or Console(file=self.out, highlight=False, soft_wrap=True)
        self.stats = Stats()
        self._in_tokens = False
        self._in_exec = False

    # -- helpers ----------------------------------------------------------------------------

    def _break(self) -> None:
        # End a run of streamed text (tokens / command output) before a block.
        if self._in_tokens or self._in_exec:
            self.console.print()
            self._in_tokens = self._in_exec = False

    def _line(self, text: str, style: str | None = None) -> None:
        self._break()
        self.console.print(text, style=style)

    # -- events -----------------------------------------------------------------------------

    def handle(self, ev: Event) -> None:
        """Account for and draw one event."""
        st = self.stats
        st.session = ev.session
        ts = _ts(ev.ts)
        if ts:
            st.first_ts = st.first_ts or ts
            st.last_ts = ts
        st.kinds[ev.kind] = st.kinds.get(ev.kind, 0) + 1
        if ev.kind == "token":
            st.tokens += 1
        elif ev.kind == "action":
            st.iterations += 1
            if action_kind(ev.data) == "shell":
                st.commands += 1
        elif ev.kind == "done":
            st.status = str(ev.data.get("status", "success"))
            st.answer = str(ev.data.get("answer", ""))
        elif ev.kind == "aborted":
            st.status = "aborted"
        elif ev.kind == "error" and st.status is None:
            st.status = "failed"
        if ev.kind == "exec_end" and ev.data.get("command"):
            self.executed.append(str(ev.data["command"]))
        if self.json_mode:
            self.out.write(ev.model_dump_json() + "\n")
            self.out.flush()
            return
        if not self.verbose and ev.kind in ("token", "exec_log", "observe", "context", "exec_end"):
            return
        getattr(self, f"_on_{ev.kind}", self._on_other)(ev)

    def _on_token(self, ev: Event) -> None:
        if self._in_exec:
            self._break()
        self.console.print(escape(str(ev.data.get("text", ""))), style="dim", end="")
        self._in_tokens = True

    def _on_session_started(self, ev: Event) -> None:
        goal = ev.data.get("goal")
        self._line(f"[bold]session[/] {ev.session}" + (f" — {escape(str(goal))}" if goal else ""))

    def _on_node(self, ev: Event) -> None:
        self._line(f"[bold magenta]◆ node:[/] {escape(str(ev.data.get('node')))}")

    def _on_context(self, ev: Event) -> None:
        d = ev.data
        if "goal" in d:
            self._line(f"[bold cyan]▶ goal:[/] {escape(str(d['goal']))}")
        hits = [h for h in d.get("kb") or [] if isinstance(h, dict)]
        if hits:
            titles = "; ".join(
                str(h.get("title", "")) + (" ✓" if h.get("status") == "verified" else "") for h in hits
            )
            n = len(hits)
            self._line(f"  [blue]context:[/] {n} recipe{'s' if n != 1 else ''} ({escape(titles)})")
        elif "kb" in d:
            self._line("  [blue]context:[/] no matching recipes")
        facts = str(d.get("facts") or "").strip().splitlines()
        if len(facts) > 1:  # the first line is the "System facts (target):" header
            self._line(f"  [blue]facts:[/] {escape(facts[1].lstrip('- '))}", style="dim")
        for key in ("kb_error", "facts_error"):
            if d.get(key):
                what = "knowledge base" if key == "kb_error" else "system facts"
                self._line(f"  [yellow]{what} unavailable:[/] {escape(str(d[key]))}")

    def _on_research_result(self, ev: Event) -> None:
        d = ev.data
        hits = [h for h in d.get("hits") or [] if isinstance(h, dict)]
        shown = "; ".join(f"{h.get('source', '?')}: {h.get('title', '')}" for h in hits[:5])
        more = f" (+{len(hits) - 5} more)" if len(hits) > 5 else ""
        n = len(hits)
        self._line(
            f"  [blue]research:[/] {n} hit{'s' if n != 1 else ''}"
            + (f" ({escape(shown)}{more})" if hits else "")
        )
        for why in d.get("unavailable") or []:
            self._line(f"  [yellow]{escape(str(why))}[/]")

    def _on_kb_commit(self, ev: Event) -> None:
        d = ev.data
        how = "drafted" if d.get("drafted") else "saved"
        line = f"  [blue]kb:[/] {how} {escape(str(d.get('id')))} — {escape(str(d.get('title', '')))}"
        line += f" ({d.get('status')})"
        if d.get("status") != "verified":
            line += f" · promote with: fazai kb verify {escape(str(d.get('id')))}"
        self._line(line)

    def _on_plan(self, ev: Event) -> None:
        steps = ev.data.get("steps") or action_of(ev.data).get("steps") or []
        self._break()
        self.console.print("[bold]plan[/]")
        for i, s in enumerate(steps, 1):
            self.console.print(f"  {i}. {escape(str(s))}")

    def _on_action(self, ev: Event) -> None:
        a = action_of(ev.data)
        kind = action_kind(ev.data)
        aid = a.get("id", ev.data.get("id"))
        detail = {
            "shell": a.get("command"),
            "ask": a.get("question"),
            "research": a.get("query"),
            "use_tool": a.get("name"),
            "tool_spec": a.get("name"),
            "commit_kb": a.get("title"),
            "observe": a.get("summary"),
            "done": None,
            "plan": None,
        }.get(kind)
        if kind in ("plan", "done"):
            # Shown by their own events / the final panel.
            self._break()
            return
        if kind == "shell" and not detail:
            detail = " ; ".join(str(c) for c in a.get("commands") or []) or None
        if self.ask and not self.verbose:
            if kind == "shell":
                cmds = [a["command"]] if a.get("command") else list(a.get("commands") or [])
                for c in cmds:
                    self._line(f"  $ {escape(str(c))}", style="dim")
            return
        text = f"[bold magenta]⚙ [{aid}] {kind}[/]"
        if detail:
            text += f" [bold]{escape(str(detail))}[/]"
        self._line(text)

    def _on_approval_required(self, ev: Event) -> None:
        d = ev.data
        reasons = "; ".join(str(r) for r in d.get("reasons") or [])
        # A built-in tool's dry run adds one line per planned change after the first line.
        head, *planned = str(d.get("summary", "")).split("\n")
        self._line(
            f"[bold yellow]? approval needed[/] for [{d.get('action')}] ({d.get('risk')}): "
            f"{escape(head)}" + (f" — {escape(reasons)}" if reasons else "")
        )
        if d.get("operator_only") or d.get("risk") == "opaque":
            # Opaque: the classifier cannot see what it runs; security-critical: firewall, root access.
            why = "cannot be analysed" if d.get("risk") == "opaque" else "is security-critical"
            self._line(f"  [yellow]this action {why}: only an explicit yes approves it (never --yes)[/]")
        for line in planned:
            self._line(f"[yellow]{escape(line)}[/]")

    def _on_alert(self, ev: Event) -> None:
        d = ev.data
        sev = f" severity {d['severity']}" if d.get("severity") is not None else ""
        src = f"{d.get('src_ip')}:{d['src_port']}" if d.get("src_port") is not None else d.get("src_ip")
        dst = f"{d.get('dest_ip')}:{d['dest_port']}" if d.get("dest_port") is not None else d.get("dest_ip")
        self._line(
            f"[bold red]! IDS alert[/] {escape(str(d.get('signature')))} (sid {d.get('signature_id')}{sev}) "
            f"{d.get('proto', '')} {src} → {dst} [{d.get('action')}]"
        )

    def _on_ask(self, ev: Event) -> None:
        d = ev.data
        opts = d.get("options") or []
        extra = f" [{' / '.join(map(str, opts))}]" if opts else ""
        self._line(f"[bold yellow]? {escape(str(d.get('question', '')))}[/]{escape(extra)}")

    def _on_reply(self, ev: Event) -> None:
        d = ev.data
        if "approved" in d:
            mark = "[green]✓ approved[/]" if d["approved"] else "[red]✗ denied[/]"
            self._line(f"  {mark} ({d.get('by', 'operator')})")
        else:
            self._line(f"  → {escape(str(d.get('answer')))} ({d.get('by', 'operator')})")

    def _on_exec_log(self, ev: Event) -> None:
        if self._in_tokens:
            self._break()
        text = str(ev.data.get("text", ""))
        if ev.data.get("stream") == "log" and not text.endswith("\n"):
            text += "\n"  # a tool's log entries are whole lines; shell output comes in raw chunks
        style = "red" if ev.data.get("stream") == "stderr" else None
        self.console.print(escape(text), style=style, end="")
        self._in_exec = not text.endswith("\n")

    def _on_exec_end(self, ev: Event) -> None:
        d = ev.data
        code = d.get("exit_code")
        dur = d.get("duration_s", d.get("duration"))
        extra = []
        if d.get("timed_out"):
            extra.append("timed out")
        if d.get("aborted"):
            extra.append("aborted")
        style = "green" if code == 0 else "red"
        dur_txt = f" in {float(dur):.2f}s" if isinstance(dur, (int, float)) else ""
        more = f" ({', '.join(extra)})" if extra else ""
        self._line(f"  [{style}]exit {code}[/]{dur_txt}{more}")

    def _on_observe(self, ev: Event) -> None:
        d = ev.data
        text = d.get("summary") or d.get("text") or ""
        status = d.get("status")
        label = "format error" if status == "format_error" else "observe"
        first = str(text).strip().splitlines()[:1]
        self._line(f"  [italic cyan]{label}:[/] [italic]{escape(first[0] if first else '')}[/]")

    def _on_exec_skip(self, ev: Event) -> None:
        d = ev.data
        reason = d.get("reason")
        cmd = escape(str(d.get("command", "")))
        if reason == "refused":
            self._line(f"  [bold red]⊘ refused[/] {cmd} [red]({d.get('risk')}: read-only mode)[/]")
        elif reason == "cached":
            self._line(f"  [cyan]↺ cached[/] {cmd} [dim]({d.get('age_s', 0)}s old)[/]")
        else:
            self._line(f"  [dim]= skipped {cmd} ({reason})[/]")

    def _on_done(self, ev: Event) -> None:
        d = ev.data
        if self.ask:
            self._break()
            status = d.get("status", "success")
            self.console.print()
            self.console.print(
                escape(str(d.get("answer", ""))), style="bold" if status == "success" else _color(status)
            )
            if status == UNVERIFIED:
                self.console.print(
                    "[bold magenta]unverified:[/] [magenta]"
                    + escape("; ".join(map(str, d.get("problems") or [])))
                    + "[/]"
                )
            if d.get("stopped_by"):
                self.console.print(f"[yellow]({escape(str(d['stopped_by']))})[/]")
            if self.executed:
                self.console.print("\ncommands executed:", style="dim")
                for c in self.executed:
                    self.console.print(f"  • {escape(c)}", style="dim")
            return
        status = d.get("status", "success")
        self._break()
        body = escape(str(d.get("answer", "")))
        if status == UNVERIFIED:
            body += (
                "\n\n[magenta]not verified — " + escape("; ".join(map(str, d.get("problems") or []))) + "[/]"
            )
        # soft_wrap is for streamed tokens; the panel must wrap its long lines, not cut them.
        self.console.print(
            Panel(body, title=f"done ({status})", border_style=_color(status)), soft_wrap=False
        )

    def _on_grounding(self, ev: Event) -> None:
        d = ev.data
        found = len(d.get("grounded") or [])
        if d.get("outcome") == "accepted":
            if self.verbose or not self.ask:
                self._line(f"  [green]✓ grounded[/] [dim]({found} values found in the evidence)[/]")
            return
        label = "answer sent back" if d.get("outcome") == "retry" else "not verified"
        problems = escape("; ".join(map(str, d.get("problems") or [])))
        self._line(f"  [bold magenta]✗ {label}:[/] [magenta]{problems}[/]")

    def _on_error(self, ev: Event) -> None:
        self._line(f"[bold red]error:[/] {escape(str(ev.data.get('message', ev.data)))}")

    def _on_aborted(self, ev: Event) -> None:
        self._line(f"[bold yellow]aborted[/] {escape(str(ev.data.get('reason', '')))}")

    def _on_playbook(self, ev: Event) -> None:
        d = ev.data
        self._line(f"[bold cyan]▶ playbook {escape(str(d.get('name')))}[/] ({d.get('trigger')}): "
                   f"{escape(str(d.get('summary', '')))}")  # fmt: skip

    def _on_step(self, ev: Event) -> None:
        d = ev.data
        status, step = str(d.get("status")), escape(str(d.get("step")))
        where = f" on {escape(str(d['target']))}" if d.get("target") else ""
        if status == "planned":
            for a in d.get("actions") or []:
                what, on = escape(str(a.get("summary"))), escape(str(a.get("target")))
                self._line(f"  [cyan]{step}[/] {what} [dim](on {on})[/]")
            return
        detail = (
            d.get("error")
            or d.get("reason")
            or d.get("undo")
            or (d.get("targets") and ", ".join(d["targets"]))
        )
        style = {"ok": "green", "skipped": "yellow", "retry": "yellow", "stage": "cyan"}.get(status, "red")
        self._line(f"  [{style}]{step} {status}[/]{where}" + (f": {escape(str(detail))}" if detail else ""))

    def _on_other(self, ev: Event) -> None:
        d = ev.data
        text = d.get("title") or d.get("name") or d.get("message") or json.dumps(d)[:200]
        self._line(f"  [blue]{ev.kind}:[/] {escape(str(text))}")

    # -- end ----------------------------------------------------------------------------------

    def finish(self, status: str | None = None) -> dict[str, Any]:
        """Print the one-line summary (or the final JSON line) and return it."""
        st = self.stats
        if status and st.status is None:
            st.status = status
        if self.ask:  # commands that really ran (not refused, cached or skipped)
            st.commands = len(self.executed)
        summary = st.to_dict()
        if self.json_mode:
            self.out.write(json.dumps({"summary": summary}) + "\n")
            self.out.flush()
        else:
            self._break()
            self.console.print(
                f"[bold]{st.status or 'unknown'}[/] · {st.iterations} iterations · "
                f"{st.commands} commands · {st.seconds:.1f}s · session {st.session}",
                style="dim" if st.status in ("success", "done") else None,
            )
        return summary


def _color(status: str) -> str:
    return {"success": "green", "blocked": "yellow", UNVERIFIED: "magenta"}.get(status, "red")
