"""The model runtime: one GGUF loaded once in llama.cpp's server, in-process (``xllamacpp``).

Everything here is blocking and meant to run in a worker thread (xllamacpp releases the GIL).
The engine knows nothing about sessions: it runs one request on one slot, saves and restores slot
states to files, and renders chat messages for models without a chat template.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fazai.worker.gguf import has_chat_template

ChunkCallback = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How to load the model."""

    model_path: Path
    threads: int = 0
    slots: int = 4
    ctx_size: int = 8192  # per slot
    batch_size: int = 16
    cache_ram_mib: int = 256
    state_dir: Path = Path("/tmp")
    # Speculative decoding: "none", "draft" (draft_model proposes, the model verifies), "ngram"
    # (prompt lookup: proposals copied from the context, no second model), or "draft+ngram".
    speculative: str = "none"
    draft_model: Path | None = None
    draft_max: int = 16  # tokens proposed per step
    draft_min: int = 0


SPECULATIVE_KINDS = ("none", "draft", "ngram", "draft+ngram")


def _speculative(p: Any, config: EngineConfig, threads: int) -> None:
    """Configure llama.cpp's speculative decoding on ``p`` (output is identical under greedy sampling:
    the model verifies every proposed token)."""
    import xllamacpp

    kinds = config.speculative.split("+") if config.speculative != "none" else []
    if config.speculative not in SPECULATIVE_KINDS:
        raise EngineError(
            f"speculative must be one of {', '.join(SPECULATIVE_KINDS)}, not {config.speculative!r}"
        )
    types = []
    if "draft" in kinds:
        if config.draft_model is None or not config.draft_model.is_file():
            raise EngineError(
                f"a draft model is needed for speculative decoding (got {config.draft_model}); "
                "pull it with `fazai model pull` or set [worker] draft_model"
            )
        d = p.speculative.draft
        d.mparams.path = str(config.draft_model)
        d.n_max, d.n_min = config.draft_max, config.draft_min
        d.cpuparams.n_threads = threads
        d.cpuparams_batch.n_threads = threads
        types.append(xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE)
    if "ngram" in kinds:
        types.append(xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE)
    if types:
        p.speculative.types = types


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """Render messages as ``role: content`` blocks ending with ``assistant:`` (for base models)."""
    parts = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join([*parts, "assistant:"])


class EngineError(RuntimeError):
    """The runtime refused a request or failed."""


class Engine:
    """One loaded model with ``slots`` independent KV caches."""

    def __init__(self, config: EngineConfig):
        import xllamacpp  # imported here: loading the extension costs ~0.3 s

        self.config = config
        if not config.model_path.is_file():
            raise EngineError(f"model file {config.model_path} does not exist")
        self.chat_template = has_chat_template(config.model_path)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        p = xllamacpp.CommonParams()
        p.model.path = str(config.model_path)
        threads = config.threads or (os.cpu_count() or 1)
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.n_parallel = config.slots
        # llama.cpp splits n_ctx evenly between slots: ctx_size is what each session gets.
        p.n_ctx = config.ctx_size * config.slots
        # Cancellation is checked between batches: a small batch bounds abort latency during
        # prompt processing (16 tokens ≈ 150 ms for Qwen 0.5B on 2 cores), at little cost in speed.
        p.n_batch = config.batch_size
        p.n_ubatch = config.batch_size
        p.cache_ram_mib = config.cache_ram_mib
        # Sessions move between slots through explicit save/restore (see docs/worker.md); copying
        # every idle slot into the RAM cache on each new task would only burn memory bandwidth.
        p.cache_idle_slots = False
        p.slot_save_path = str(config.state_dir) + "/"
        p.warmup = False
        _speculative(p, config, threads)
        # The in-process server also opens a loopback HTTP listener: lock it with a random key.
        self._api_key = secrets.token_hex(16)
        p.api_keys = [self._api_key]
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(p)
        except Exception as e:  # the extension raises plain RuntimeError/ValueError
            raise EngineError(f"cannot load {config.model_path}: {e}") from e
        self.load_s = time.perf_counter() - t0
        self._base = self._server.listening_address

    def request_body(
        self,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        slot: int,
        *,
        grammar: str | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Build a streaming request for ``slot``; returns (is_chat, body)."""
        body: dict[str, Any] = {
            "stream": True,
            "return_progress": True,  # progress chunks let an abort land during prompt processing
            "cache_prompt": True,
            "id_slot": slot,
            "temperature": sampling.get("temperature", 0.2),
            "top_p": sampling.get("top_p", 0.9),
            "repeat_penalty": sampling.get("repeat_penalty", 1.05),
            "n_predict": sampling.get("max_tokens", 512),
        }
        stop = list(sampling.get("stop") or [])
        if sampling.get("seed") is not None:
            body["seed"] = sampling["seed"]
        if grammar:
            body["grammar"] = grammar
        elif json_schema:
            body["json_schema"] = json_schema
        if self.chat_template:
            body["messages"] = messages
        else:
            body["prompt"] = plain_prompt(messages)
            # A base model happily writes the next turn itself.
            stop += ["\nuser:", "\nsystem:"]
        if stop:
            body["stop"] = stop
        return self.chat_template, body

    def run(self, is_chat: bool, body: dict[str, Any], on_chunk: ChunkCallback) -> dict[str, Any] | None:
        """Run one streaming request; ``on_chunk`` returning True cancels it. Blocking."""
        fn = self._server.handle_chat_completions if is_chat else self._server.handle_completions
        try:
            return fn(body, on_chunk)
        except Exception as e:
            raise EngineError(str(e)) from e

    def _slot_action(self, slot: int, action: str, filename: str) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self._base}/slots/{slot}?action={action}",
            data=json.dumps({"filename": filename}).encode(),
            headers={"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise EngineError(f"slot {action} failed: {e.read().decode(errors='replace')}") from e
        except OSError as e:
            raise EngineError(f"slot {action} failed: {e}") from e

    def save_slot(self, slot: int, filename: str) -> dict[str, Any]:
        """Write the KV cache of ``slot`` to ``state_dir/filename``."""
        return self._slot_action(slot, "save", filename)

    def restore_slot(self, slot: int, filename: str) -> dict[str, Any]:
        """Load ``state_dir/filename`` into ``slot``."""
        return self._slot_action(slot, "restore", filename)

    def close(self) -> None:
        """Stop the runtime (joins llama.cpp's loop)."""
        server = getattr(self, "_server", None)
        if server is not None:
            del self._server
