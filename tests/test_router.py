"""Router: fallback on error and first-token timeout, stuck escalation, who served each turn."""

from __future__ import annotations

import pytest

from fazai.models.base import Final, Message, ProviderError, Token, collect
from fazai.models.router import RouterProvider
from fazai.models.scripted import ScriptedError, ScriptedProvider

MSG = [Message("user", "go")]


async def test_error_falls_back_and_records_who_served() -> None:
    head = ScriptedProvider([ScriptedError("backend down"), "local ok"], name="local")
    tail = ScriptedProvider(["arbiter ok"], name="arbiter")
    s = await RouterProvider([head, tail]).open_session()
    f1 = await collect(s.generate(MSG))
    assert (f1.text, f1.served_by) == ("arbiter ok", "arbiter")
    assert f1.extra["router"]["tried"] == ["local", "arbiter"]
    assert "backend down" in f1.extra["router"]["errors"][0]
    # The next turn starts from the head of the chain again.
    f2 = await collect(s.generate(MSG))
    assert (f2.text, f2.served_by) == ("local ok", "local")


async def test_stuck_signal_sends_the_next_turn_to_the_next_provider() -> None:
    local = ScriptedProvider(["loop", "loop", "back"], name="local")
    arbiter = ScriptedProvider(["unstuck"], name="arbiter")
    router = RouterProvider([local, arbiter])
    s = await router.open_session()
    assert (await collect(s.generate(MSG))).served_by == "local"
    s.mark_stuck()
    f = await collect(s.generate(MSG))
    assert (f.text, f.served_by, f.extra["router"]["escalated"]) == ("unstuck", "arbiter", True)
    assert s.served_by == "arbiter"
    assert (await collect(s.generate(MSG))).served_by == "local"
    # Inner sessions are opened lazily, once per provider.
    assert sorted(s._sessions) == [0, 1]
    await s.close()


async def test_stuck_on_the_last_provider_stays_there() -> None:
    only = ScriptedProvider(["a", "b"], name="only")
    s = await RouterProvider([only]).open_session()
    await collect(s.generate(MSG))
    s.mark_stuck()
    assert (await collect(s.generate(MSG))).served_by == "only"


async def test_unexpected_exception_also_falls_back() -> None:
    class Broken:
        name, supports_grammar = "broken", False

        async def open_session(self, params=None):
            raise ConnectionRefusedError("socket gone")

        async def aclose(self) -> None:
            return None

    s = await RouterProvider([Broken(), ScriptedProvider(["ok"], name="ok")]).open_session()
    f = await collect(s.generate(MSG))
    assert f.served_by == "ok" and "ConnectionRefusedError: socket gone" in f.extra["router"]["errors"][0]


async def test_first_token_timeout_passes_to_the_next() -> None:
    slow = ScriptedProvider(["too late"], name="slow", token_delay_s=5)
    fast = ScriptedProvider(["in time"], name="fast")
    s = await RouterProvider([slow, fast], first_token_timeout_s=[0.1, None]).open_session()
    f = await collect(s.generate(MSG))
    assert f.served_by == "fast" and "no first token within 0.1 s" in f.extra["router"]["errors"][0]


async def test_all_failing_raises_with_every_reason() -> None:
    a = ScriptedProvider([ScriptedError("a broke")], name="a")
    b = ScriptedProvider([ScriptedError("b broke")], name="b")
    s = await RouterProvider([a, b]).open_session()
    with pytest.raises(ProviderError, match=r"a broke.*b broke"):
        await collect(s.generate(MSG))


async def test_abort_reaches_the_serving_provider() -> None:
    head = ScriptedProvider([ScriptedError("down")], name="head")
    tail = ScriptedProvider(["x" * 500], name="tail", chunk_size=1, token_delay_s=0.001)
    s = await RouterProvider([head, tail]).open_session()
    final = None
    async for c in s.generate(MSG):
        if isinstance(c, Token):
            await s.abort()
        else:
            final = c
    assert isinstance(final, Final) and final.stop_reason == "aborted" and final.served_by == "tail"


def test_needs_providers() -> None:
    with pytest.raises(ValueError):
        RouterProvider([])


async def test_escalate_sends_the_next_turn_to_the_stronger_provider_with_the_reason() -> None:
    small = ScriptedProvider(["small 1", "small 2", "small 3"], name="small")
    big = ScriptedProvider(["big 1"], name="big")
    sess = await RouterProvider([small, big]).open_session()

    async def turn() -> tuple[str, str, object]:
        final = await collect(sess.generate(MSG))
        return final.text, final.served_by, final.extra["router"]["escalated"]

    assert await turn() == ("small 1", "small", False)
    await sess.escalate("grounding")
    assert await turn() == ("big 1", "big", "grounding")
    assert await turn() == ("small 2", "small", False)  # later turns go back to the head of the chain


def test_a_second_local_model_in_the_chain_gets_its_own_worker(tmp_path) -> None:
    from fazai.config import Settings
    from fazai.models.factory import build_provider

    s = Settings.model_validate(
        {
            "paths": {"state_dir": str(tmp_path), "runtime_dir": str(tmp_path / "run")},
            "ai_provider": {
                "fallback": [
                    {
                        "provider": "worker",
                        "model": "qwen2.5-coder-1.5b",
                        "worker_args": ["--speculative", "ngram"],
                    }
                ]
            },
        }
    )
    router = build_provider(s)
    first, second = router.providers
    assert first.socket_path == s.worker_socket and first.model == s.worker.model
    assert second.socket_path == tmp_path / "run" / "worker-qwen2.5-coder-1.5b.sock"
    assert second.model == "qwen2.5-coder-1.5b" and second._worker_args == ["--speculative", "ngram"]
