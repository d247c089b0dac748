"""The learning loop end to end: the real runner and glue, the scripted provider, real embeddings, a
real embedded KB and session store in a temp state dir, real system facts of this machine."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from daemon_harness import action, write_config
from fazai.agent.deps import KBHit
from fazai.agent.learning import commands_that_worked, fit_budget, platforms_of
from fazai.agent.prompt import kb_hit_line
from fazai.cli.render import Renderer
from fazai.config import load_settings
from fazai.facts import Facts
from fazai.knowledge.access import KBAccess
from fazai.knowledge.store import EdgeStore, StoreLockedError, open_edge_store
from fazai.protocol import Event
from fazai.sessions.manager import RunOptions, SessionManager
from fazai.store import Store


class Env:
    """A FazAI install in a temp dir: config, session store, runner (the embedded CLI's setup)."""

    def __init__(self, home: Path, script: list[str], kb_extra: str = ""):
        self.config = write_config(home, script, learning=True)
        if kb_extra:  # extra [kb] keys go into the [kb] table write_config wrote
            text = self.config.read_text().replace("[kb]\n", "[kb]\n" + kb_extra + "\n", 1)
            self.config.write_text(text)
        self.settings = load_settings(self.config)
        self.store: Store | None = None
        self.manager: SessionManager | None = None

    async def __aenter__(self) -> Env:
        self.store = await Store.open(self.settings.database_url)
        self.manager = SessionManager(self.settings, self.store)
        await self.manager.start(recover=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.manager and self.store
        await self.manager.stop()
        await self.store.close()

    async def run(self, goal: str) -> list[Event]:
        assert self.manager and self.store
        run = await self.manager.start_run(goal=goal, options=RunOptions(yes=True))
        await self.manager.wait(run.session_id)
        return [e for e in await self.store.events(run.session_id) if e.kind != "token"]

    def kb(self) -> KBAccess:
        return self.manager._owned_loop.kb_access  # the runner's own access (the one the runs used)


def fazai(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process."""
    env = {**os.environ, "FAZAI_CONFIG": str(cfg), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "fazai.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)  # fmt: skip


def of(events: list[Event], kind: str) -> list[dict]:
    return [e.data for e in events if e.kind == kind]


async def test_research_shell_commit_kb_then_a_second_session_finds_it(tmp_path: Path) -> None:
    title = "Rotate the acme-widget logs"
    script = [
        # session 1: research (the real KB, starter recipes imported), a command, save what worked
        action(action="research", query="how many IPs are banned by fail2ban", sources=["kb"]),
        action(action="shell", command="echo rotated acme-widget"),
        action(
            action="commit_kb",
            title=title,
            snippet="logrotate -f /etc/logrotate.d/acme-widget",
            tags=["acme-widget", "Log Rotation"],
            status="verified",  # the model's claim: stored unverified all the same
            check="ls /",  # read-only: it runs on a later session and verifies the recipe
        ),
        action(action="done", answer="rotated", status="success"),
        # session 2: a paraphrase of the goal
        action(action="done", answer="see the recipe", status="success"),
    ]
    async with Env(tmp_path / "home", script) as env:
        first = await env.run("rotate the logs of the acme-widget service")
        second = await env.run("acme-widget log files are too big, how do I rotate them?")

    assert not of(first, "error") and of(first, "done")[0]["status"] == "success"
    ctx1 = of(first, "context")[0]
    assert ctx1["facts"].startswith("System facts (local):")  # collected at session start
    assert "kb" in ctx1 and "kb_error" not in ctx1
    research = of(first, "research_result")[0]
    assert research["unavailable"] == [] and "fail2ban" in research["hits"][0]["title"].lower()
    assert {h["source"] for h in research["hits"]} == {"kb"}

    committed = of(first, "kb_commit")
    assert len(committed) == 1, committed  # the model saved it: no extra draft on top
    c = committed[0]
    assert c["title"] == title and c["status"] == "unverified" and c["claimed_status"] == "verified"
    assert c["source"] == "local" and c["check"] == "ls /"
    assert c["drafted"] is False and c["tags"] == ["acme-widget", "log-rotation"]
    obs = next(o for o in of(first, "observe") if o["kind"] == "commit_kb")
    assert obs["status"] == "ok" and c["id"] in obs["text"]

    with env.kb().session() as kb:
        item = kb.get(c["id"])
    assert item is not None and item.snippet == "logrotate -f /etc/logrotate.d/acme-widget"
    # Checked on this machine: its distro from the facts (when os-release could be read).
    assert item.os == "linux" and all(d.split("-")[0] in ctx1["facts"].lower() for d in item.distros)

    ctx2 = of(second, "context")[0]
    hits = ctx2["kb"]
    assert hits and hits[0]["title"] == title and hits[0]["id"] == c["id"], hits
    assert hits[0]["status"] == "verified"  # its check passed in this later session
    with env.kb().session() as kb:
        again = kb.get(c["id"])
    assert again is not None and again.status == "verified" and "check `ls /` passed" in str(again.evidence)
    budget = env.settings.kb.token_budget
    assert sum(len(kb_hit_line(h)) for h in hits) / 3.5 <= budget + len(hits)


async def test_a_successful_session_drafts_an_unverified_item_that_kb_verify_promotes(
    tmp_path: Path,
) -> None:
    goal = "check whether the acme-gizmo daemon answers"
    script = [
        action(action="shell", command="echo acme-gizmo answers"),
        action(action="shell", command="false"),  # failed: not part of the lesson
        action(action="done", answer="it answers", status="success"),
        # the same goal again: the same lesson is not stored twice
        action(action="shell", command="echo acme-gizmo answers"),
        action(action="done", answer="it answers", status="success"),
        # a failed run teaches nothing
        action(action="shell", command="echo acme-gizmo half-way"),
        action(action="done", answer="could not tell", status="failed"),
        # after `fazai kb verify`
        action(action="done", answer="ok", status="success"),
    ]
    async with Env(tmp_path / "home", script, kb_extra="import_starter = false") as env:
        first = await env.run(goal)
        drafted = of(first, "kb_commit")
        assert len(drafted) == 1, of(first, "error")
        d = drafted[0]
        assert d["drafted"] is True and d["status"] == "unverified" and d["id"].startswith("learned.")
        kinds = [e.kind for e in first]
        assert kinds.index("kb_commit") < kinds.index("done") == len(kinds) - 1  # done stays last

        again = await env.run(goal)
        assert not of(again, "kb_commit")
        failed = await env.run("check the acme-gizmo something else")
        assert not of(failed, "kb_commit") and of(failed, "done")[0]["status"] == "failed"

        with env.kb().session() as kb:
            item = kb.get(d["id"])
            assert item is not None and item.status == "unverified" and item.source == "local"
            assert item.snippet == "echo acme-gizmo answers" and item.notes == "it answers"
            assert kb.count() == 1

        # The runner is still up (as in an embedded `fazai agent` or the daemon): `fazai kb`, another
        # process, can open the store because runs hold it only per operation.
        res = fazai(env.config, "kb", "verify", d["id"], "--evidence", "ran it")
        assert res.returncode == 0, res.stderr
        assert f"verified {d['id']}" in res.stdout

        # The next session gets the verified item as context.
        later = await env.run("does the acme-gizmo daemon answer?")
    hits = of(later, "context")[0]["kb"]
    assert hits[0]["id"] == d["id"] and hits[0]["status"] == "verified"


def test_open_edge_store_waits_for_the_holder_then_says_who_to_blame(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    holder = EdgeStore(path, 4)
    with pytest.raises(StoreLockedError, match=r"stayed locked by another process for 0\.2s"):
        open_edge_store(path, 4, wait_s=0.2)

    def release() -> None:
        time.sleep(0.3)
        holder.close()

    t = threading.Thread(target=release)
    t.start()
    opened = open_edge_store(path, 4, wait_s=10)  # gets it once the holder lets go
    opened.close()
    t.join()


def test_fit_budget_puts_verified_first_and_never_exceeds_the_budget() -> None:
    hits = [
        KBHit("close unverified", "a " * 40, "unverified", 0.9, id="u1"),
        KBHit("verified one", "b " * 40, "verified", 0.5, id="v1"),
        KBHit("verified two", "c " * 40, "verified", 0.7, id="v2"),
    ]
    kept = fit_budget(hits, 10_000)
    assert [h.id for h in kept] == ["v2", "v1", "u1"]
    one = len(kb_hit_line(kept[0].to_dict())) / 3.5 + 1
    assert [h.id for h in fit_budget(hits, int(one * 2) + 1)] == ["v2", "v1"]
    cut = fit_budget([KBHit("huge", "x" * 5000, "verified", 1.0, id="h")], 100)
    assert len(cut) == 1 and cut[0].snippet.endswith("(truncated)")
    assert len(kb_hit_line(cut[0].to_dict())) / 3.5 <= 100
    assert fit_budget(hits, 0) == []


def test_platforms_and_commands_that_worked() -> None:
    assert platforms_of(Facts(os={"id": "debian", "version_id": "12"})) == ["debian-12", "debian", "linux"]
    assert platforms_of(Facts(os={"id": "opnsense", "version_id": "24.7"}))[-1] == "opnsense"
    assert platforms_of(Facts()) == [] and platforms_of(None) == []

    def ev(kind_: str, /, **data: object) -> Event:
        return Event(session="s", kind=kind_, data=data)  # type: ignore[arg-type]

    events = [
        ev("action", id=1, kind="shell", action={"command": "uptime"}),
        ev("exec_end", action=1, exit_code=0),
        ev("action", id=2, kind="shell", action={"command": "false"}),
        ev("exec_end", action=2, exit_code=1),
        ev("action", id=3, kind="shell", action={"command": "sleep 9"}),
        ev("exec_end", action=3, exit_code=0, cancelled=True),
        ev("action", id=4, kind="shell", action={"command": "rm -rf /x"}),  # denied: never ran
    ]
    assert commands_that_worked(events) == ["uptime"]


def test_renderer_shows_the_context_used_and_what_was_learned() -> None:
    buf = io.StringIO()
    r = Renderer(console=Console(file=buf, width=200, color_system=None))
    r.handle(Event(session="s", kind="context", data={
        "goal": "g", "facts": "System facts (local):\n- OS: Debian 12", "kb": [
            {"title": "Banned IPs", "status": "verified", "id": "a"},
            {"title": "Jails", "status": "unverified", "id": "b"}]}))  # fmt: skip
    r.handle(Event(session="s", kind="kb_commit", data={
        "id": "learned.1", "title": "T", "status": "unverified", "drafted": True}))  # fmt: skip
    r.handle(Event(session="s", kind="context", data={"goal": "g2", "kb": [], "kb_error": "boom"}))
    r.handle(Event(session="s", kind="research_result", data={
        "hits": [{"source": "kb", "title": "Banned IPs [verified]"}],
        "unavailable": ["web search unavailable: no searxng_url"]}))  # fmt: skip
    text = buf.getvalue()
    assert "context: 2 recipes (Banned IPs ✓; Jails)" in text
    assert "facts: OS: Debian 12" in text
    assert "kb: drafted learned.1 — T (unverified) · promote with: fazai kb verify learned.1" in text
    assert "context: no matching recipes" in text and "knowledge base unavailable: boom" in text
    assert "research: 1 hit (kb: Banned IPs [verified])" in text
    assert "web search unavailable: no searxng_url" in text


def test_embedded_fazai_agent_shows_context_and_drafts_then_fazai_kb_lists_it(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port where no daemon listens: the CLI runs the agent embedded
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = [
        action(action="shell", command="echo Currently banned: 3"),
        action(action="done", answer="3 IPs banned", status="success"),
    ]
    cfg = write_config(tmp_path / "home", script, port=port, learning=True)
    run = fazai(cfg, "agent", "--yes", "how many IPs are banned by fail2ban?")
    assert run.returncode == 0, run.stderr
    assert "context: 4 recipes (" in run.stdout and "fail2ban" in run.stdout  # starter recipes
    assert "facts: OS:" in run.stdout  # uname alone gives this line
    assert "kb: drafted learned." in run.stdout and "fazai kb verify learned." in run.stdout
    listed = fazai(cfg, "kb", "list", "--status", "unverified", "--json")
    items = json.loads(listed.stdout)
    assert [i["snippet"] for i in items] == ["echo Currently banned: 3"] and items[0]["tags"][0] == "learned"


async def test_a_model_recipe_with_a_changing_check_is_never_verified(tmp_path: Path) -> None:
    """The check must be read-only by the policy: a write "check" is dropped, and nothing the model
    says makes its recipe verified."""
    script = [
        action(action="shell", command="echo Currently banned: 3"),
        action(
            action="commit_kb",
            title="Uptime to a file",
            snippet="echo up > /var/log/uptime_check.txt",
            tags=["uptime"],
            status="verified",
            check="echo up > /var/log/uptime_check.txt",
        ),
        action(action="done", answer="3 IPs banned", status="success"),
        action(action="done", answer="see the recipe", status="success"),
    ]
    async with Env(tmp_path / "home", script) as env:
        first = await env.run("write the uptime to a file")
        await env.run("save the uptime to a log file")
    c = of(first, "kb_commit")[0]
    assert c["status"] == "unverified" and c["check"] is None
    with env.kb().session() as kb:
        item = kb.get(c["id"])
        assert item is not None and item.status == "unverified"
        kb.reject(item.id, "a made-up write command")
        assert kb.get(item.id).status == "rejected"  # type: ignore[union-attr]
        assert all(h.item.id != item.id for h in kb.search("write the uptime to a file", k=10))
