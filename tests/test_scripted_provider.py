import asyncio

import pytest

from fazai.models.base import Final, Message, ProviderError, SessionParams, Token, collect
from fazai.models.scripted import ScriptedError, ScriptedProvider

MSG = [Message("user", "hi")]


async def test_replays_in_order_and_chunks() -> None:
    p = ScriptedProvider(["hello world", "second"], chunk_size=2)
    s = await p.open_session()
    chunks = [c async for c in s.generate(MSG)]
    assert all(isinstance(c, Token) for c in chunks[:-1])
    assert "".join(c.text for c in chunks[:-1]) == "hello world"
    final = chunks[-1]
    assert isinstance(final, Final) and final.text == "hello world" and final.served_by == "scripted"
    assert (await collect(s.generate(MSG))).text == "second"
    with pytest.raises(ProviderError, match="exhausted"):
        await collect(s.generate(MSG))


async def test_error_entry_and_stop_strings() -> None:
    p = ScriptedProvider([ScriptedError("boom"), "abc<END>def"])
    s = await p.open_session(SessionParams(stop=("<END>",)))
    with pytest.raises(ProviderError, match="boom"):
        await collect(s.generate(MSG))
    assert (await collect(s.generate(MSG))).text == "abc"


async def test_abort_mid_stream() -> None:
    p = ScriptedProvider(["x" * 1000], chunk_size=1, token_delay_s=0.001)
    s = await p.open_session()
    got = []

    async def consume() -> Final:
        async for c in s.generate(MSG):
            if isinstance(c, Final):
                return c
            got.append(c)
        raise AssertionError("no final")

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    await s.abort()
    final = await task
    assert final.stop_reason == "aborted"
    assert 0 < len(final.text) < 1000


def test_from_file(tmp_path) -> None:
    f = tmp_path / "s.json"
    f.write_text('["a", {"error": "e"}]')
    p = ScriptedProvider.from_file(f)
    assert p.remaining == 2
    f.write_text("{}")
    with pytest.raises(ProviderError, match="JSON list"):
        ScriptedProvider.from_file(f)
