"""The streaming action parser: the first complete, valid action in text split anywhere."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fazai.protocol import (
    ActionStreamParser,
    DoneAction,
    ParseFailure,
    PlanAction,
    ShellAction,
    action_line,
    parse_action,
)

OFFERED = ["plan", "ask", "shell", "observe", "done"]


def feed_chars(text: str, offered=OFFERED) -> tuple[ActionStreamParser, object]:
    """Feed one character at a time; return the parser and what feed() returned first."""
    parser = ActionStreamParser(offered)
    found = None
    for ch in text:
        found = parser.feed(ch)
        if found is not None:
            break
    return parser, found


def test_action_found_as_soon_as_its_brace_closes():
    text = 'Checking uptime.\n{"action": "shell", "command": "uptime"}\nmore text that never matters'
    parser, found = feed_chars(text)
    assert isinstance(found, ShellAction) and found.command == "uptime"
    assert parser.text.endswith("}")  # nothing after the closing brace was needed
    assert parser.reasoning == "Checking uptime."


def test_braces_quotes_and_newlines_inside_strings():
    cmd = 'awk \'{print $1}\' /etc/passwd | grep "}" ; echo "{"'
    text = json.dumps({"action": "shell", "command": cmd})
    _, found = feed_chars("run it:\n" + text)
    assert isinstance(found, ShellAction) and found.command == cmd
    # A raw newline inside a string (invalid strict JSON, common from models) is accepted.
    raw = '{"action": "done", "answer": "line one\nline two"}'
    assert parse_action(raw) == DoneAction(answer="line one\nline two")


def test_code_fence_and_prose_kept_as_reasoning():
    text = 'I will look at disks first.\n```json\n{"action": "plan", "steps": ["df -h"]}\n```\n'
    parser, found = feed_chars(text)
    assert isinstance(found, PlanAction)
    assert parser.reasoning == "I will look at disks first."


def test_two_actions_on_one_line_take_the_first():
    text = '{"action": "shell", "command": "id"} {"action": "done", "answer": "x"}'
    assert parse_action(text) == ShellAction(command="id")


def test_multiline_pretty_printed_object():
    text = 'ok\n{\n  "action": "done",\n  "answer": "42",\n  "status": "success"\n}'
    assert parse_action(text) == DoneAction(answer="42")


def test_prose_braces_do_not_start_objects():
    text = 'the set {a, b} and { x } then\n{"action": "done", "answer": "ok"}'
    _, found = feed_chars(text)
    assert found == DoneAction(answer="ok")


def test_stray_open_object_in_prose_is_recovered_at_finish():
    text = 'note {"unterminated": [1, 2\n{"action": "done", "answer": "ok"}'
    parser = ActionStreamParser(OFFERED)
    parser.feed(text)
    assert parser.finish() == DoneAction(answer="ok")


def test_model_supplied_id_and_version_are_ignored():
    action = parse_action('{"action": "done", "answer": "a", "id": "evil", "v": 99}')
    assert isinstance(action, DoneAction) and action.id is None and action.v == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the answer was empty"),
        ("I think we should check the disk.", "no JSON action found"),
        ('{"action": "shell"}', 'give "command" (one command) or "commands" (a list)'),
        ('{"action": "shell", "command": ""}', "command: String should have at least 1 character"),
        ('{"action": "rm_everything"}', "unknown action 'rm_everything'"),
        ('{"action": "research", "query": "x"}', "action 'research' is not available here"),
        ('{"action": "shell", "command": "echo "hi""}', "invalid JSON"),
        ('{"action": "done", "answer": "cut off', "incomplete JSON"),
        ('{"action": "plan", "steps": []}', "steps: List should have at least 1 item"),
    ],
)
def test_format_errors_say_what_was_wrong(text, expected):
    result = parse_action(text, OFFERED)
    assert isinstance(result, ParseFailure)
    assert expected in result.message
    obs = result.observation()
    assert obs.startswith("FORMAT ERROR") and "plan, ask, shell, observe, done" in obs


def test_invalid_first_then_valid_action_wins():
    text = '{"action": "shell"}\n{"action": "shell", "command": "ls"}'
    assert parse_action(text) == ShellAction(command="ls")


def test_feed_after_action_is_ignored():
    parser = ActionStreamParser(OFFERED)
    first = parser.feed('{"action": "done", "answer": "a"}')
    assert parser.feed('{"action": "done", "answer": "b"}') is first
    assert parser.finish() is first


@pytest.mark.parametrize(
    "junk",
    [
        '{"a": ' * 1500,  # unclosed and deep
        '{"a":' * 1500 + "}" * 1500,  # closed but absurdly deep
        "[" * 5000 + '{"action": "done", "x": ' + "[" * 3000 + "]" * 3000 + "}",  # json's recursion limit
        '{"' * 4000,
    ],
)
def test_pathological_nesting_is_a_format_error_not_a_crash(junk):
    result = parse_action(junk, OFFERED)
    assert isinstance(result, ParseFailure)
    # ...and an action after the junk is still found.
    assert parse_action(junk.replace("{", "(") + '\n{"action": "done", "answer": "a"}') == DoneAction(
        answer="a"
    )


# --- fuzzing -----------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
_actions = st.one_of(
    st.builds(ShellAction, command=_text.filter(bool), timeout=st.none() | st.integers(1, 999).map(float)),
    st.builds(PlanAction, steps=st.lists(_text, min_size=1, max_size=4)),
    st.builds(DoneAction, answer=_text, status=st.sampled_from(["success", "failed", "blocked"])),
)
_prose = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="{"), max_size=80)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for p in [*points, len(text)]:
        pieces.append(text[last:p])
        last = p
    return pieces


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.lists(st.integers(0, 400), max_size=12))
def test_fuzz_never_crashes(text, cuts):
    parser = ActionStreamParser(OFFERED)
    for piece in _split(text, cuts):
        parser.feed(piece)
    result = parser.finish()
    assert isinstance(result, ParseFailure) or result.action in OFFERED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from('{}[]"\\:, \naction'), max_size=120),
    st.lists(st.integers(0, 200), max_size=8),
)
def test_fuzz_json_shaped_noise_never_crashes(text, cuts):
    parser = ActionStreamParser(OFFERED)
    for piece in _split(text, cuts):
        parser.feed(piece)
    parser.finish()


@settings(max_examples=300, deadline=None)
@given(_prose, _actions, st.sampled_from(["", "\n", "```json\n"]), st.lists(st.integers(0, 600), max_size=15))
def test_fuzz_any_valid_action_split_anywhere_is_found(prose, action, fence, cuts):
    line = action_line(action)
    text = prose + "\n" + fence + line + "\n```\ntrailing {junk"
    parser = ActionStreamParser(OFFERED)
    found = None
    for piece in _split(text, cuts):
        found = parser.feed(piece)
        if found is not None:
            break
    assert found is not None, "found while streaming, before the stream ended"
    assert found == action
    assert parser.finish() == action


@settings(max_examples=200, deadline=None)
@given(_actions, st.lists(st.integers(0, 600), max_size=15))
def test_fuzz_serialization_roundtrip_with_default_json(action, cuts):
    # json.dumps with its default separators and ASCII escapes, as other backends may write it.
    text = json.dumps(action.model_dump(exclude={"v", "id"}, exclude_none=True))
    parser = ActionStreamParser(OFFERED)
    for piece in _split(text, cuts):
        parser.feed(piece)
    assert parser.finish() == action


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from('{{{}["]:a, \\'), min_size=500, max_size=4000))
def test_fuzz_long_bracket_soup_never_crashes(text):
    parse_action(text, OFFERED)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from('{}[]"\\:, \nactiondoneshel0-1.u'), max_size=200),
    st.lists(st.integers(0, 200), max_size=8),
)
def test_fuzz_result_does_not_depend_on_how_the_text_is_split(text, cuts):
    parser = ActionStreamParser(OFFERED)
    for piece in _split(text, cuts):
        parser.feed(piece)
    split, whole = parser.finish(), parse_action(text, OFFERED)
    if isinstance(whole, ParseFailure):
        assert isinstance(split, ParseFailure)
    else:
        assert split == whole
