"""The GBNF grammar generated from the offered actions."""

from __future__ import annotations

import secrets

import pytest

from fazai.agent.grammar import grammar_for
from fazai.protocol import ACTION_KINDS, ParseFailure, parse_action

CORE = ["plan", "ask", "shell", "observe", "done"]


def test_grammar_offers_only_the_given_actions():
    g = grammar_for(CORE)
    assert "action ::= act-plan | act-ask | act-shell | act-observe | act-done" in g
    for kind in ("research", "tool_spec", "use_tool", "commit_kb"):
        assert f"act-{kind.replace('_', '-')} ::=" not in g
    assert g.startswith("root ::= reason-line? reason-line? action")
    assert grammar_for(["done"], reasoning_lines=0).startswith("root ::= action")


def test_grammar_rejects_unknown_or_empty():
    with pytest.raises(ValueError, match="unknown action kind"):
        grammar_for(["shell", "format_disk"])
    with pytest.raises(ValueError, match="at least one"):
        grammar_for([])


@pytest.fixture(scope="module")
def gemma_server(gemma_gguf):
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(gemma_gguf)
    p.cpuparams.n_threads = 2
    p.cpuparams_batch.n_threads = 2
    p.n_ctx = 1024
    p.warmup = False
    p.api_keys = [secrets.token_hex(16)]  # the in-process server also listens on loopback
    server = xllamacpp.Server(p)
    yield server
    del server


@pytest.mark.slow
def test_grammar_compiles_and_constrains_a_real_model(gemma_server):
    # Every kind's rules compile in llama.cpp (a broken grammar is a 400 error, not a completion).
    r = gemma_server.handle_completions({"prompt": "x", "grammar": grammar_for(ACTION_KINDS), "n_predict": 1})
    assert "error" not in r, r
    broken = gemma_server.handle_completions({"prompt": "x", "grammar": "root ::= nothing", "n_predict": 1})
    assert "error" in broken  # the check above can fail
    # One short generation under the core grammar: the weak base model still emits a valid action.
    prompt = (
        "Reply with one JSON action.\nGoal: list the files\n"
        '{"action": "shell", "command": "ls -la"}\nGoal: show the uptime\n'
    )
    body = {"prompt": prompt, "grammar": grammar_for(CORE), "n_predict": 64, "temperature": 0, "seed": 7}
    r = gemma_server.handle_completions(body)
    choice = r["choices"][0]
    assert choice["finish_reason"] == "stop", choice  # the grammar completed before the token budget
    action = parse_action(choice["text"], CORE)
    assert not isinstance(action, ParseFailure), (choice["text"], action)
    # The action is the last line, on one line.
    assert choice["text"].splitlines()[-1].startswith('{"action": ')
