"""Speculative decoding in the worker's engine: n-gram prompt lookup gives the plain model's greedy
output exactly; a bad configuration is a clear error before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from fazai.worker.engine import Engine, EngineConfig, EngineError


def _greedy(engine: Engine, prompt: str) -> str:
    sampling = {"temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0, "max_tokens": 24, "seed": 1}
    is_chat, body = engine.request_body([{"role": "user", "content": prompt}], sampling, 0)
    out: list[str] = []

    def on_chunk(chunk: dict) -> bool:
        for ch in chunk.get("choices") or []:
            out.append((ch.get("delta") or {}).get("content") or ch.get("text") or "")
        return False

    engine.run(is_chat, body, on_chunk)
    return "".join(out)


@pytest.mark.slow
def test_ngram_lookup_keeps_greedy_output_identical(gemma_gguf: Path, tmp_path: Path) -> None:
    prompt = "Repeat this list exactly: /var/log/syslog /var/log/auth.log /var/log/kern.log /var/log/dpkg.log"
    texts = {}
    for kind in ("none", "ngram"):
        cfg = EngineConfig(gemma_gguf, threads=2, slots=1, ctx_size=1024, cache_ram_mib=0,
                           state_dir=tmp_path / kind, speculative=kind)  # fmt: skip
        eng = Engine(cfg)
        try:
            texts[kind] = _greedy(eng, prompt)
        finally:
            eng.close()
    assert texts["none"] and texts["ngram"] == texts["none"]


def test_bad_speculative_settings_are_clear_errors(gemma_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="speculative must be one of"):
        Engine(EngineConfig(gemma_gguf, state_dir=tmp_path, speculative="turbo"))
    with pytest.raises(EngineError, match="draft model is needed"):
        Engine(
            EngineConfig(
                gemma_gguf, state_dir=tmp_path, speculative="draft", draft_model=tmp_path / "no.gguf"
            )
        )
