"""Answering from recipes: the matcher on held-out questions at the configured threshold, slot
filling, every extractor on real outputs, and the loop ending a question without a model turn."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from _agent_doubles import ScriptedInteraction
from fazai.agent.deps import AgentDeps
from fazai.agent.direct import DirectAnswers
from fazai.agent.loop import run_agent
from fazai.answers.extract import EXTRACTORS, NoAnswer
from fazai.answers.slots import fill_slots, split_question, substitute
from fazai.config import AgentSettings, KBSettings, SafetySettings
from fazai.knowledge.recipe_index import RecipeIndex
from fazai.knowledge.starter import load_starter
from fazai.models.scripted import ScriptedProvider
from fazai.safety import SafetyPolicy

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO / "tests" / "data" / "facts"
sys.path.insert(0, str(REPO / "bench"))
from bench_recipes import load_questions  # noqa: E402

RECIPES = [i for i in load_starter() if i.answer is not None]


def direct(embedder, **kw) -> DirectAnswers:
    index = RecipeIndex(embedder)

    async def search(q: str, k: int) -> list:
        return index.score(q, RECIPES)[:k]

    return DirectAnswers(search, **{"threshold": KBSettings().answer_threshold, **kw})


def test_the_configured_threshold_answers_no_held_out_question_wrongly(embedder) -> None:
    m = direct(embedder)
    right = wrong = taken = 0
    for want, q in load_questions():
        got = [x for x in asyncio.run(m.plan(q)) if x is not None]
        rid = got[0].item_id if got else None
        if want is None:
            taken += rid is not None
        elif rid == want:
            right += 1
        elif rid is not None:
            wrong += 1
    assert wrong == 0 and taken == 0
    assert right >= 60  # of 95 (bench/bench_recipes.py prints the whole table)


def test_a_counting_recipe_never_answers_a_question_that_asks_which(embedder) -> None:
    """ "Top source of …" / "which … most" want a name: a count recipe steps aside (its miss says why)."""
    m = direct(embedder, threshold=0.5)
    for q in ["what is the top source of failed ssh password attempts?",
              "top offender for failed ssh passwords?"]:  # fmt: skip
        got = [x for x in asyncio.run(m.plan(q)) if x is not None]
        assert all(x.item_id != "starter.answer-ssh-failed-count" for x in got), (q, got)
    got = [x for x in asyncio.run(m.plan("how many failed ssh passwords are in /var/log/auth.log?")) if x]
    assert [x.item_id for x in got] == ["starter.answer-ssh-failed-count"]
    asyncio.run(m.plan("top offender for failed ssh passwords?"))
    count = "starter.answer-ssh-failed-count"
    assert any(x["recipe"] == count and "asks which" in x["why"] for x in m.misses)


def test_a_recipe_whose_value_the_question_does_not_name_steps_aside(embedder) -> None:
    """The per-user recipe ranks first for "Which user has UID 1001?" but no user is named: the
    UID recipe, which uses the number the question gives, answers (before: no recipe at all)."""
    m = direct(embedder)
    got = asyncio.run(m.plan("Which user has UID 1001?"))
    assert [x.item_id for x in got if x] == ["starter.answer-uid-owner"] and got[0].slots == {"uid": "1001"}
    assert not asyncio.run(m.plan("how many files are in /etc?"))[0]  # largest-file needs "largest"


def test_every_recipe_is_read_only_and_names_a_real_extractor() -> None:
    policy = SafetyPolicy(SafetySettings())
    for item in RECIPES:
        assert item.answer is not None and item.answer.extract in EXTRACTORS, item.id
        values = {k: "/srv" if t == "path" else "10" if t in ("number", "size", "percent") else "nginx"
                  for k, t in item.answer.slots.items()}  # fmt: skip
        cmd = substitute(item.answer.command, {**item.answer.defaults, **values})
        d = policy.check_command(cmd)
        assert str(getattr(d.risk, "value", d.risk)) == "read_only", (item.id, cmd, d.reasons)


def test_questions_split_into_their_parts() -> None:
    assert split_question("How long has this machine been up, and how full is its root filesystem?") == [
        "How long has this machine been up", "how full is its root filesystem",
    ]  # fmt: skip
    assert split_question("Which users are in the sudo and docker groups?") == [
        "Which users are in the sudo and docker groups"
    ]


@pytest.mark.parametrize(
    ("question", "slots", "expected"),
    [
        ("What is the home directory of user bob?", {"user": "user"}, {"user": "bob"}),
        ("IPs banned in the nginx-http-auth jail?", {"jail": "jail"}, {"jail": "nginx-http-auth"}),
        ("What is the PID of the payments-api process?", {"process": "process"}, {"process": "payments-api"}),
        ("Files under /srv/data larger than 10 MB?", {"path": "path", "size": "size"},
         {"path": "/srv/data", "size": "10"}),
        ("When does the backup cron job run?", {"job": "job"}, {"job": "backup"}),
        ("Which user has UID 1001?", {"uid": "number"}, {"uid": "1001"}),
        ("Is the `php8.2-fpm` service up?", {"service": "service"}, {"service": "php8.2-fpm"}),
    ],
)  # fmt: skip
def test_slots_fill_from_the_question(question: str, slots: dict, expected: dict) -> None:
    filled = fill_slots(question, slots)
    assert filled is not None and filled.values == expected


def test_slot_values_are_shell_quoted() -> None:
    assert substitute("getent passwd {user}", {"user": "x; rm -rf /"}) == "getent passwd 'x; rm -rf /'"


def x(name: str, out: str, slots: dict | None = None, q: str = "") -> str:
    return EXTRACTORS[name](out, slots or {}, q)


def test_extractors_on_captured_system_outputs() -> None:
    assert x("uptime", "18960.53 36000.00\n") == "Up 5 hours, 16 minutes (18961 seconds since boot)."
    df = (FACTS / "df.txt").read_text()
    assert x("df_mount", df).startswith("/ is 26% full: 26.0 GiB used of 252.0 GiB")
    assert x("df_over", df, {"limit": "90"}).startswith("No filesystem is above 90%: the fullest is")
    assert "of RAM in total" in x("meminfo", (FACTS / "meminfo.txt").read_text())
    assert x("failed_units", (FACTS / "systemctl-failed.txt").read_text()) == (
        "Failed units: nginx.service, postfix@-.service."
    )
    assert "54333 (pytest)" in x("listening_ports", (FACTS / "ss.txt").read_text())
    assert x("os_release", (FACTS / "os-release.debian12.txt").read_text() + "12.11\n") == (
        "Debian GNU/Linux 12 (bookworm), version 12.11."
    )


def test_extractors_on_service_outputs() -> None:
    status = ("Status for the jail: sshd\n|- Filter\n`- Actions\n   |- Currently banned:\t3\n"
              "   `- Banned IP list:\t203.0.113.7 198.51.100.23 192.0.2.45\n"
              "Status for the jail: asterisk\n`- Actions\n   |- Currently banned:\t2\n")  # fmt: skip
    assert x("fail2ban_total", status) == "5 IPs are banned (3 in sshd, 2 in asterisk)."
    assert (
        x("fail2ban_jails", "|- Number of jail:\t2\n`- Jail list:\tsshd, asterisk")
        == "2 jails: sshd, asterisk."
    )
    assert x("service_state", "inactive\n", {"service": "nginx"}) == "No, nginx is inactive (not running)."
    assert (
        x("sshd_setting", "PermitRootLogin no\n", {"setting": "PermitRootLogin"}) == "No: PermitRootLogin no."
    )
    assert x("cron_time", "30 2 * * * root /usr/local/sbin/backup.sh\n") == (
        "At 02:30 every day: root /usr/local/sbin/backup.sh"
    )
    assert x("config_value", "relayhost = [smtp.example.net]:587\n", q="Which relayhost is set?") == (
        "relayhost = [smtp.example.net]:587"
    )
    with pytest.raises(NoAnswer):
        x("fail2ban_jail", "Sorry but the command is invalid")


def _loop_deps(embedder, outputs: list[str]) -> tuple[AgentDeps, ScriptedProvider]:
    provider = ScriptedProvider(outputs)
    policy = SafetyPolicy(SafetySettings())
    return AgentDeps(provider=provider, policy=policy, settings=AgentSettings(),
                     direct=direct(embedder, policy=policy)), provider  # fmt: skip


async def _run(deps: AgentDeps, goal: str) -> list:
    return [e async for e in run_agent(goal, session_id="s1", deps=deps, interaction=ScriptedInteraction(),
                                       abort=asyncio.Event()) if e.kind != "token"]  # fmt: skip


async def test_a_question_a_recipe_answers_ends_without_a_model_turn(embedder) -> None:
    deps, provider = _loop_deps(embedder, [])
    events = await _run(deps, "How many CPU cores does this box have?")
    action = next(e.data for e in events if e.kind == "action")
    assert action["source"] == "recipe" and action["action"]["command"] == "nproc"
    assert any(e.kind == "exec_end" for e in events)  # the command really ran, as an action of the session
    done = next(e.data for e in events if e.kind == "done")
    cores = str(len(__import__("os").sched_getaffinity(0)))
    assert done["answer_source"] == "recipe" and done["answer"] == f"{cores} CPU cores."
    assert next(e.data for e in events if e.kind == "grounding")["outcome"] == "accepted"
    assert provider._pos == 0  # no generation was asked for


async def test_a_question_no_recipe_answers_goes_to_the_model(embedder) -> None:
    answer = json.dumps({"action": "done", "answer": "no idea", "status": "failed"})
    deps, provider = _loop_deps(embedder, [answer])
    events = await _run(deps, "Which nginx worker handled the most requests since Monday?")
    assert not any(e.data.get("source") == "recipe" for e in events if e.kind == "action")
    assert provider._pos == 1
