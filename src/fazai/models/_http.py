"""Shared plumbing of the HTTP providers: SSE parsing, abortable reads, error translation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from fazai.models.base import ProviderError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event."""

    event: str
    data: str


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Parse ``text/event-stream`` lines into events (``event:``/``data:`` fields, blank-line framed)."""
    event = ""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data or event:
                yield SSEEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            event = value
        elif key == "data":
            data.append(value)
    if data:
        yield SSEEvent(event or "message", "\n".join(data))


class Aborted(Exception):
    """Raised by :func:`race_abort` when the abort event fires first."""


async def race_abort(aw: asyncio.Future[T] | asyncio.Task[T], abort: asyncio.Event) -> T:
    """Await ``aw`` unless ``abort`` is set first (then cancel it and raise :class:`Aborted`)."""
    if abort.is_set():
        aw.cancel()
        raise Aborted
    waiter = asyncio.ensure_future(abort.wait())
    try:
        done, _ = await asyncio.wait({aw, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        aw.cancel()
        raise
    finally:
        waiter.cancel()
    if aw in done:
        return aw.result()
    aw.cancel()
    with contextlib.suppress(BaseException):
        await aw
    raise Aborted


def http_error(
    provider: str, url: str, status: int, body: str, *, model: str = "", key_env: str | None = None
) -> ProviderError:
    """Translate an HTTP error status into a :class:`ProviderError` with a useful hint."""
    snippet = body.strip().replace("\n", " ")[:300]
    msg = f"HTTP {status} from {url}: {snippet}"
    if status in (401, 403):
        where = f"the environment variable {key_env}" if key_env else "api_key_env in [ai_provider]"
        return ProviderError(msg, provider=provider, hint=f"check the API key in {where}", retryable=False)
    if status == 404:
        return ProviderError(
            msg,
            provider=provider,
            hint=f"check base_url and that the model {model!r} exists on this endpoint",
            retryable=False,
        )
    if status == 429:
        return ProviderError(msg, provider=provider, hint="rate limited: wait and retry, or add a fallback")
    if status >= 500:
        return ProviderError(msg, provider=provider, hint="the server failed: retry later or add a fallback")
    return ProviderError(
        msg, provider=provider, hint="the request was rejected: check the settings", retryable=False
    )


def transport_error(provider: str, url: str, e: Exception) -> ProviderError:
    """Translate a connection/timeout failure into a :class:`ProviderError`."""
    if isinstance(e, httpx.TimeoutException):
        return ProviderError(
            f"timed out talking to {url} ({type(e).__name__})",
            provider=provider,
            hint="the server is slow or unreachable: raise timeout_s or check the server",
        )
    if isinstance(e, httpx.ConnectError):
        return ProviderError(
            f"cannot connect to {url}: {e}",
            provider=provider,
            hint="is the server running and base_url right?",
        )
    return ProviderError(f"request to {url} failed: {type(e).__name__}: {e}", provider=provider)


class LazyClient:
    """One ``httpx.AsyncClient`` per provider, created on first use (inside the running loop, so a
    provider can be built before any loop exists) and recreated after ``aclose``."""

    def __init__(self, headers: dict[str, str], timeout_s: float):
        self.headers = headers
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        """The client, created if needed."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                headers=self.headers,
                timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client (a later ``get`` opens a new one)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, object],
    abort: asyncio.Event,
    *,
    provider: str,
    status_error: Callable[[int, str], ProviderError],
) -> AsyncIterator[httpx.Response]:
    """POST ``body`` as a streamed request, raced against ``abort`` (:class:`Aborted`).

    An error status raises ``status_error(status, body text)``; a transport failure inside the block
    raises :class:`Aborted` when the abort caused it, else a :func:`transport_error`. The response is
    closed on exit.
    """
    resp: httpx.Response | None = None
    try:
        req = client.build_request("POST", url, json=body)
        resp = await race_abort(asyncio.ensure_future(client.send(req, stream=True)), abort)
        if resp.status_code >= 400:
            raise status_error(resp.status_code, (await resp.aread()).decode(errors="replace"))
        yield resp
    except httpx.HTTPError as e:
        if abort.is_set():
            raise Aborted from e
        raise transport_error(provider, url, e) from e
    finally:
        if resp is not None:
            await resp.aclose()


async def sse_json(
    resp: httpx.Response, abort: asyncio.Event, *, url: str, provider: str, done: str | None = None
) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """Each server-sent event of ``resp`` as ``(event name, parsed JSON)``, each read raced against
    ``abort``; ends at the stream's end or at a ``done`` data line (OpenAI's ``[DONE]``)."""
    events = iter_sse(resp.aiter_lines())
    while True:
        try:
            ev = await race_abort(asyncio.ensure_future(anext(events)), abort)
        except StopAsyncIteration:
            return
        if done is not None and ev.data.strip() == done:
            return
        try:
            obj = json.loads(ev.data)
        except ValueError as e:
            raise ProviderError(
                f"malformed stream data from {url}: {ev.data[:200]!r}", provider=provider
            ) from e
        yield ev.event, obj
