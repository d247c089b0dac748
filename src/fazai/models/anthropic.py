"""Anthropic's Messages API, streaming, over plain httpx (no SDK).

``POST {base_url}/v1/messages`` with ``stream: true`` answers Server-Sent Events: ``message_start``
(input usage), ``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta``),
``content_block_stop``, ``message_delta`` (stop reason, output usage), ``message_stop``, and
``error`` (e.g. ``overloaded_error``) which may arrive mid-stream.

System messages travel in the top-level ``system`` field; consecutive messages of one role are
merged because the API wants user/assistant turns. Grammars and JSON schemas are not sent (the
constraint is reported as ignored in ``Final.extra``); the agent's parser still validates lines.
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

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
_STOP: dict[str, StopReason] = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicProvider:
    """Client of the Anthropic Messages API."""

    supports_grammar = False

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        name: str | None = None,
        timeout_s: float = 120.0,
        version: str = API_VERSION,
    ):
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model
        self.name = name or f"anthropic:{model}"
        self.timeout_s = timeout_s
        self._api_key_env = api_key_env
        self._headers = {
            "x-api-key": api_key,
            "anthropic-version": version,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        self._http = LazyClient(self._headers, timeout_s)
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """The Messages endpoint."""
        return f"{self.base_url}/v1/messages"

    def client(self) -> httpx.AsyncClient:
        """The shared HTTP client (created on first use, inside the running loop)."""
        return self._http.get()

    async def open_session(self, params: SessionParams | None = None) -> AnthropicSession:
        """Open a session (stateless on the wire)."""
        return AnthropicSession(self, f"{self.name}-{next(self._ids)}", params or SessionParams())

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    def build_body(self, messages: list[Message], params: SessionParams) -> dict[str, Any]:
        """The request body: system text apart, alternating user/assistant turns."""
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            if turns and turns[-1]["role"] == m.role:
                turns[-1]["content"] += "\n\n" + m.content
            else:
                turns.append({"role": m.role, "content": m.content})
        if not turns or turns[0]["role"] != "user":
            turns.insert(0, {"role": "user", "content": "(start)"})
        # Recent models reject temperature and top_p together: temperature alone is the portable choice.
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "messages": turns,
            "stream": True,
            "temperature": min(params.temperature, 1.0),
        }
        if system:
            body["system"] = system
        if params.stop:
            body["stop_sequences"] = list(params.stop)
        return body


class AnthropicSession:
    """A session of :class:`AnthropicProvider`."""

    def __init__(self, provider: AnthropicProvider, session_id: str, params: SessionParams):
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
        body = p.build_body(messages, params or self._params)
        client = p.client()
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        reason: StopReason = "stop"
        usage: dict[str, int] = {}
        model = p.model
        stopped = False
        try:
            opened = open_stream(
                client, p.url, body, self._abort, provider=p.name,
                status_error=lambda status, text: _api_error(p, status, text),
            )  # fmt: skip
            async with (
                opened as resp,
                aclosing(sse_json(resp, self._abort, url=p.url, provider=p.name)) as events,
            ):
                async for event, obj in events:
                    kind = obj.get("type") or event
                    if kind == "message_start":
                        msg = obj.get("message") or {}
                        model = msg.get("model") or model
                        usage.update(
                            {k: v for k, v in (msg.get("usage") or {}).items() if isinstance(v, int)}
                        )
                    elif kind == "content_block_delta":
                        delta = obj.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            if first is None:
                                first = time.perf_counter()
                            parts.append(delta["text"])
                            yield Token(delta["text"])
                    elif kind == "message_delta":
                        sr = (obj.get("delta") or {}).get("stop_reason")
                        if sr:
                            reason = _STOP.get(sr, "stop")
                        usage.update(
                            {k: v for k, v in (obj.get("usage") or {}).items() if isinstance(v, int)}
                        )
                    elif kind == "message_stop":
                        stopped = True
                        break
                    elif kind == "error":
                        err = obj.get("error") or {}
                        raise ProviderError(
                            f"stream error from {p.url}: {err.get('type', '?')}: {err.get('message', '')}",
                            provider=p.name,
                            hint="the API is overloaded or failed: retry later or add a fallback",
                        )
                    # ping, content_block_start/stop and unknown future events need nothing.
            if not stopped:
                raise ProviderError(
                    f"stream from {p.url} ended before message_stop", provider=p.name, hint="retry"
                )
        except Aborted:
            reason = "aborted"
        end = time.perf_counter()
        gen = usage.get("output_tokens", len(parts))
        decode_s = end - first if first is not None else 0.0
        yield Final(
            text="".join(parts),
            stop_reason=reason,
            usage=Usage(
                prompt_tokens=usage.get("input_tokens", 0)
                + usage.get("cache_read_input_tokens", 0)
                + usage.get("cache_creation_input_tokens", 0),
                cached_tokens=usage.get("cache_read_input_tokens", 0),
                generated_tokens=gen,
                ttft_ms=((first or end) - start) * 1000,
                tokens_per_s=(gen - 1) / decode_s if gen > 1 and decode_s > 0 else 0.0,
                prompt_ms=((first or end) - start) * 1000,
                total_ms=(end - start) * 1000,
            ),
            served_by=p.name,
            model=model,
            extra={"constraint_ignored": "grammar" if constraint.grammar else "json_schema"}
            if constraint and (constraint.grammar or constraint.json_schema)
            else {},
        )

    async def abort(self) -> None:
        """Stop the generation in progress: the stream is closed and ends ``aborted``."""
        self._abort.set()

    async def close(self) -> None:
        """Forget the session."""
        self._abort.set()
        self.closed = True


def _api_error(p: AnthropicProvider, status: int, text: str) -> ProviderError:
    # Anthropic's error body: {"type": "error", "error": {"type": "...", "message": "..."}}.
    detail = text
    try:
        err = json.loads(text).get("error") or {}
        detail = f"{err.get('type', '?')}: {err.get('message', '')}"
    except (ValueError, AttributeError):
        pass
    if status == 529:
        return ProviderError(
            f"HTTP 529 from {p.url}: {detail}", provider=p.name, hint="Anthropic is overloaded: retry later"
        )
    return http_error(p.name, p.url, status, detail, model=p.model, key_env=p._api_key_env)
