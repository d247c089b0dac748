"""Any OpenAI-compatible endpoint: Ollama, vLLM, llama.cpp server, OpenAI, OpenRouter, Gemini.

Streams ``POST {base_url}/chat/completions`` (Server-Sent Events). ``base_url`` follows the OpenAI
SDK convention and includes the version prefix (``http://localhost:11434/v1``,
``https://api.openai.com/v1``, ``https://generativelanguage.googleapis.com/v1beta/openai``).

Structured output: a JSON schema goes out as ``response_format: {type: json_schema}`` (OpenAI,
vLLM, Ollama, llama.cpp, Gemini). A GBNF grammar is only understood by llama.cpp servers: set
``llamacpp = true`` to send it (and ``repeat_penalty``, which OpenAI itself rejects). A constraint the
endpoint cannot take is dropped and reported in ``Final.extra["constraint_ignored"]``.

Usage comes from the stream (``stream_options.include_usage``); time to first token and tokens/s are
measured here, on the client, so every backend reports them the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from fazai.models._http import Aborted, LazyClient, http_error, open_stream, sse_json
from fazai.models.base import (
    Chunk,
    Constraint,
    Final,
    Message,
    ProviderError,
    SessionParams,
    StopReason,
    Token,
    Usage,
)

_FINISH: dict[str, StopReason] = {"stop": "stop", "length": "length"}


class OpenAICompatProvider:
    """Client of an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        name: str | None = None,
        timeout_s: float = 120.0,
        llamacpp: bool = False,
        json_schema: bool = True,
        headers: dict[str, str] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or f"openai:{model}"
        self.llamacpp = llamacpp
        self.json_schema = json_schema
        self.supports_grammar = llamacpp
        self.timeout_s = timeout_s
        self._api_key_env = api_key_env
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._http = LazyClient(self._headers, timeout_s)
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return f"{self.base_url}/chat/completions"

    def client(self) -> httpx.AsyncClient:
        """The shared HTTP client (created on first use, inside the running loop)."""
        return self._http.get()

    async def open_session(self, params: SessionParams | None = None) -> OpenAICompatSession:
        """Open a session. Stateless on the wire: the conversation travels with each call."""
        return OpenAICompatSession(self, f"{self.name}-{next(self._ids)}", params or SessionParams())

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    def build_body(
        self, messages: list[Message], params: SessionParams, constraint: Constraint | None
    ) -> tuple[dict[str, Any], str | None]:
        """The request body, and the name of a constraint that had to be dropped (if any)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if self.llamacpp:
            body["repeat_penalty"] = params.repeat_penalty
        ignored = None
        if constraint and constraint.grammar:
            if self.llamacpp:
                body["grammar"] = constraint.grammar
            else:
                ignored = "grammar"
        if constraint and constraint.json_schema and "grammar" not in body:
            if self.json_schema:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": constraint.json_schema},
                }
            else:
                ignored = "json_schema"
        return body, ignored


class OpenAICompatSession:
    """A session of :class:`OpenAICompatProvider`."""

    def __init__(self, provider: OpenAICompatProvider, session_id: str, params: SessionParams):
        self.id = session_id
        self._p = provider
        self._params = params
        self._abort = asyncio.Event()
        self.closed = False

    async def generate(
        self,
        messages: list[Message],
        *,
        constraint: Constraint | None = None,
        params: SessionParams | None = None,
    ) -> AsyncIterator[Chunk]:
        """Stream the reply; the last chunk is a :class:`Final`."""
        p = self._p
        if self.closed:
            raise ProviderError("session is closed", provider=p.name, retryable=False)
        self._abort.clear()
        body, ignored = p.build_body(messages, params or self._params, constraint)
        client = p.client()
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        reason: StopReason = "stop"
        usage_raw: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        model = p.model
        deltas = 0
        try:
            opened = open_stream(
                client, p.url, body, self._abort, provider=p.name,
                status_error=lambda status, text: http_error(
                    p.name, p.url, status, text, model=p.model, key_env=p._api_key_env
                ),
            )  # fmt: skip
            async with opened as resp:
                if resp.headers.get("content-type", "").startswith("application/json"):
                    # An endpoint that ignored `stream: true` and answered in one piece.
                    obj = json.loads(await resp.aread())
                    text = ((obj.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
                    fr = (obj.get("choices") or [{}])[0].get("finish_reason")
                    usage_raw, timings = obj.get("usage") or {}, obj.get("timings") or {}
                    model = obj.get("model") or model
                    reason = _FINISH.get(fr or "stop", "stop")
                    if text:
                        first = time.perf_counter()
                        parts.append(text)
                        deltas = 1
                        yield Token(text)
                else:
                    stream = sse_json(resp, self._abort, url=p.url, provider=p.name, done="[DONE]")
                    async with aclosing(stream) as events:
                        async for _, obj in events:
                            if "error" in obj:
                                err = obj["error"]
                                msg = err.get("message", err) if isinstance(err, dict) else err
                                raise ProviderError(f"stream error from {p.url}: {msg}", provider=p.name)
                            model = obj.get("model") or model
                            if obj.get("usage"):
                                usage_raw = obj["usage"]
                            if obj.get("timings"):
                                timings = obj["timings"]
                            for choice in obj.get("choices") or []:
                                text = (choice.get("delta") or {}).get("content")
                                if text:
                                    if first is None:
                                        first = time.perf_counter()
                                    deltas += 1
                                    parts.append(text)
                                    yield Token(text)
                                fr = choice.get("finish_reason")
                                if fr:
                                    reason = _FINISH.get(fr, "stop")
        except Aborted:
            reason = "aborted"
        end = time.perf_counter()
        yield Final(
            text="".join(parts),
            stop_reason=reason,
            usage=_usage(usage_raw, timings, deltas, start, first, end),
            served_by=p.name,
            model=model,
            extra={"constraint_ignored": ignored} if ignored else {},
        )

    async def abort(self) -> None:
        """Stop the generation in progress: the HTTP stream is closed, the stream ends ``aborted``."""
        self._abort.set()

    async def close(self) -> None:
        """Forget the session (nothing is held server-side)."""
        self._abort.set()
        self.closed = True


def _usage(
    raw: dict[str, Any], timings: dict[str, Any], deltas: int, start: float, first: float | None, end: float
) -> Usage:
    gen = int(raw.get("completion_tokens") or deltas)
    details = raw.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or timings.get("cache_n") or 0)
    ttft = ((first or end) - start) * 1000
    decode_s = end - first if first is not None else 0.0
    # The first token's latency belongs to the prompt; rate the remaining ones.
    tps = (gen - 1) / decode_s if gen > 1 and decode_s > 0 else 0.0
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        cached_tokens=cached,
        generated_tokens=gen,
        ttft_ms=ttft,
        tokens_per_s=tps,
        prompt_ms=float(timings.get("prompt_ms") or ttft),
        total_ms=(end - start) * 1000,
    )
