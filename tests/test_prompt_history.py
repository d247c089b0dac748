"""Prompt assembly and history rebuilding from events."""

from __future__ import annotations

from fazai.agent.history import History, history_from_events
from fazai.agent.observation import excerpt
from fazai.agent.prompt import build_messages, context_block, system_prompt
from fazai.protocol import Event

CORE = ["plan", "ask", "shell", "observe", "done"]


def ev(kind: str, **data) -> Event:
    return Event(session="s", kind=kind, data=data)


def test_system_prompt_lists_only_offered_actions_and_rules():
    text = system_prompt(CORE)
    for kind in CORE:
        assert f"- {kind}:" in text
    assert "- research:" not in text and "- commit_kb:" not in text
    assert "exactly ONE action" in text and "single line" in text and "ask instead of guessing" in text
    assert system_prompt(CORE) == text  # deterministic: the worker's shared prefix


def test_context_block_orders_verified_first_and_skips_empty_sections():
    assert context_block({}) == ""
    block = context_block({
        "facts": "os: Debian 12",
        "kb": [
            {"title": "old note", "snippet": "a", "status": "unverified", "score": 0.99},
            {"title": "known fix", "snippet": "b", "status": "verified", "score": 0.5},
        ],
    })  # fmt: skip
    assert block.index("## System facts") < block.index("## What FazAI already knows")
    assert block.index("[verified] known fix") < block.index("[unverified] old note")


def test_messages_alternate_and_merge_observation_with_new_goal():
    h = History()
    h.add_goal("first", {"facts": "f1"})
    h.add_turn('{"action": "done", "answer": "x", "status": "success"}', 1)
    h.add_observation("noted", 1)
    h.add_goal("second")
    msgs = build_messages(h, CORE)
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1].content.endswith("Goal: first") and "f1" in msgs[1].content
    assert msgs[3].content == "Observation: noted\n\nNew goal: second"


def test_old_observations_are_shortened_past_the_budget_and_say_so():
    h = History()
    h.add_goal("g")
    for i in range(1, 11):
        h.add_turn(f'{{"action": "shell", "command": "cmd{i}"}}', i)
        h.add_observation(f"out{i} " + "x" * 3000, i)
    msgs = build_messages(h, CORE, budget_chars=12000, keep_recent=4)
    total = sum(len(m.content) for m in msgs[1:])
    assert total < 14000
    assert "older output shortened" in msgs[3].content  # the first observation
    assert "older output shortened" not in msgs[-1].content  # recent ones stay whole
    assert len(msgs[-1].content) > 3000
    # Under the budget nothing changes.
    assert "older output shortened" not in "".join(
        m.content for m in build_messages(h, CORE, budget_chars=10**6)
    )


def test_excerpt_head_tail():
    e = excerpt("a" * 10 + "b" * 10 + "c" * 10, 10, 10)
    assert e.truncated and e.omitted_chars == 10 and e.total_chars == 30
    assert e.text.startswith("a" * 10) and e.text.endswith("c" * 10) and "10 characters omitted" in e.text
    assert excerpt("short", 10, 10).text == "short"


def test_history_from_events_rebuilds_turns_ids_and_state():
    events = [
        ev("context", goal="g1", facts="F"),
        ev("token", text="ignored"),
        ev("action", id=1, said='{"action": "plan", "steps": ["a"]}'),
        ev("plan", action=1, steps=["a"]),
        ev("observe", action=1, status="ok", text="plan recorded"),
        ev("observe", action=None, status="format_error", said="garbage", text="FORMAT ERROR: x"),
        ev("action", id=2, said='{"action": "shell", "command": "ls"}'),
        ev("exec_log", action=2, stream="stdout", text="a\n"),
        ev("exec_end", action=2, exit_code=0),
        ev("observe", action=2, status="ok", text="action 2 (shell) exit_code=0"),
        ev("aborted", during="idle"),
    ]
    h = history_from_events(events)
    assert h.goal == "g1" and not h.finished and h.iterations == 3
    assert h.next_action_id() == 3 and h.pending_action is None and h.interrupted_action is None
    assert [(e.role, e.text) for e in h.entries] == [
        ("goal", "g1"),
        ("assistant", '{"action": "plan", "steps": ["a"]}'),
        ("observation", "plan recorded"),
        ("assistant", "garbage"),
        ("observation", "FORMAT ERROR: x"),
        ("assistant", '{"action": "shell", "command": "ls"}'),
        ("observation", "action 2 (shell) exit_code=0"),
    ]
    assert h.entries[0].context == {"facts": "F"}
    finished = history_from_events([*events, ev("done", action=3, answer="x", status="success")])
    assert finished.finished


def test_history_notes_an_action_interrupted_by_a_crash():
    h = history_from_events([ev("context", goal="g"), ev("action", id=1, said="{...}")])
    assert h.interrupted_action == 1
    assert h.entries[-1].role == "observation" and "interrupted" in h.entries[-1].text


def test_a_new_goal_brings_its_own_kb_hits_but_not_the_facts_again():
    h = History()
    h.add_goal("first", {"facts": "System facts: f1", "kb": [{"title": "t1", "snippet": "s1", "id": "a"}]})
    h.add_turn('{"action": "done", "answer": "x", "status": "success"}', 1)
    h.add_observation("noted", 1)
    h.add_goal("second", {"facts": "System facts: f2", "kb": [{"title": "t2", "snippet": "s2", "id": "b"}]})
    msgs = build_messages(h, CORE)
    assert "[unverified] t1: s1" in msgs[1].content and "f1" in msgs[1].content
    assert "(id a)" not in msgs[1].content  # ids are for the log, not for the model to copy
    last = msgs[-1].content
    assert "[unverified] t2: s2" in last and last.endswith("New goal: second")
    assert "f2" not in last and "t1" not in last
