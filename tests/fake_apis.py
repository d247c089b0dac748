"""Local stand-ins for remote LLM APIs that cannot be reached from the test machine.

- :func:`anthropic_app`: Anthropic's Messages API, faithful to its streaming format
  (https://docs.anthropic.com/en/api/messages-streaming): ``message_start``, ``content_block_start``,
  ``ping``, ``content_block_delta``/``text_delta``, ``content_block_stop``, ``message_delta`` (stop
  reason + output usage), ``message_stop``, ``error`` events; ``x-api-key`` and ``anthropic-version``
  checks; error bodies ``{"type": "error", "error": {"type", "message"}}``; 529 when overloaded.
- :func:`openai_errors_app`: the error behaviour of hosted OpenAI-compatible APIs (404 unknown model,
  429 rate limit, 500, a server too slow to answer) that a local llama.cpp server never shows.

The "model" of the fake is deterministic: it answers ``"You said: <last user text>."`` followed by
counting words, one word per token, so stop sequences and max_tokens can be checked exactly.
Special model names select failure modes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "test-key"
WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def reply_words(last_user: str, n: int) -> list[str]:
    """The fake model's deterministic answer, as tokens (words with their leading space)."""
    base = f"You said: {last_user.strip()}.".split()
    words = base + [WORDS[i % len(WORDS)] for i in range(max(0, n))]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _anthropic_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def anthropic_app(delay_s: float = 0.005) -> Starlette:
    """A fake of ``POST /v1/messages`` (streaming and non-streaming)."""

    async def messages(request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _anthropic_error(400, "invalid_request_error", "anthropic-version header is required")
        try:
            body = await request.json()
        except ValueError:
            return _anthropic_error(400, "invalid_request_error", "body is not JSON")
        model, max_tokens, msgs = body.get("model"), body.get("max_tokens"), body.get("messages")
        if not model or not isinstance(max_tokens, int) or not isinstance(msgs, list) or not msgs:
            return _anthropic_error(
                400, "invalid_request_error", "model, max_tokens and messages are required"
            )
        roles = [m.get("role") for m in msgs]
        if roles[0] != "user" or any(a == b for a, b in itertools.pairwise(roles)):
            return _anthropic_error(400, "invalid_request_error", "messages: roles must alternate from user")
        if any(r not in ("user", "assistant") for r in roles):
            return _anthropic_error(400, "invalid_request_error", "messages: role must be user or assistant")
        if "temperature" in body and "top_p" in body:
            return _anthropic_error(400, "invalid_request_error", "temperature and top_p cannot both be set")
        if model == "claude-overloaded":
            return _anthropic_error(529, "overloaded_error", "Overloaded")
        if model == "claude-missing":
            return _anthropic_error(404, "not_found_error", f"model: {model}")
        last_user = next(m["content"] for m in reversed(msgs) if m["role"] == "user")
        tokens = reply_words(str(last_user), 40)
        stops = body.get("stop_sequences") or []
        input_tokens = sum(len(str(m["content"]).split()) for m in msgs) + len(
            str(body.get("system", "")).split()
        )
        if not body.get("stream"):
            text, reason, n = _run(tokens, max_tokens, stops)
            return JSONResponse(
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": reason,
                    "usage": {"input_tokens": input_tokens, "output_tokens": n},
                }
            )

        async def events() -> AsyncIterator[str]:
            yield _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": input_tokens,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                            "output_tokens": 1,
                        },
                    },
                },
            )
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            yield _sse("ping", {"type": "ping"})
            text, n, reason, stop_seq = "", 0, "end_turn", None
            for tok in tokens:
                if n >= max_tokens:
                    reason = "max_tokens"
                    break
                hit = next((s for s in stops if s in text + tok), None)
                if hit:
                    cut = (text + tok).index(hit)
                    piece = (text + tok)[len(text) : cut]
                    if piece:
                        yield _delta(piece)
                    reason, stop_seq = "stop_sequence", hit
                    break
                if model == "claude-midstream-error" and n == 3:
                    yield _sse(
                        "error",
                        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                    )
                    return
                await asyncio.sleep(delay_s)
                text += tok
                n += 1
                yield _delta(tok)
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": stop_seq},
                    "usage": {"output_tokens": n},
                },
            )
            yield _sse("message_stop", {"type": "message_stop"})

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def _delta(text: str) -> str:
    return _sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


def _run(tokens: list[str], max_tokens: int, stops: list[str]) -> tuple[str, str, int]:
    text, n = "", 0
    for tok in tokens:
        if n >= max_tokens:
            return text, "max_tokens", n
        for s in stops:
            if s in text + tok:
                return (text + tok)[: (text + tok).index(s)], "stop_sequence", n
        text += tok
        n += 1
    return text, "end_turn", n


def openai_errors_app() -> Starlette:
    """Hosted-API failure modes of ``POST /v1/chat/completions``, chosen by the model name."""

    async def completions(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
                status_code=401,
            )
        body = await request.json()
        model = body.get("model")
        if model == "missing":
            return JSONResponse(
                {"error": {"message": f"The model `{model}` does not exist", "code": "model_not_found"}},
                status_code=404,
            )
        if model == "ratelimited":
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "requests"}}, status_code=429
            )
        if model == "broken":
            return JSONResponse({"error": {"message": "internal error"}}, status_code=500)
        if model == "slow":
            for _ in range(50):  # a server that takes 5 s before answering, until the client leaves
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.1)
        if model == "nostream":  # some proxies ignore `stream: true` and answer in one piece
            return JSONResponse(
                {
                    "object": "chat.completion",
                    "model": "nostream-1",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "whole"},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                }
            )
        if model == "stream-error":

            async def err() -> AsyncIterator[str]:
                yield 'data: {"error": {"message": "upstream provider failed", "code": 502}}\n\n'

            return StreamingResponse(err(), media_type="text/event-stream")
        return JSONResponse({"error": {"message": f"unknown test model {model}"}}, status_code=400)

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = True  # do not wait for requests the tests abandoned
        thread.join(timeout=5)
        sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
