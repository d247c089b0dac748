"""Request limits of the daemon: a body size cap (HTTP 413 with a message), checked before parsing."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 (by Content-Length, or as it streams)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> bytes:
        return json.dumps(
            {
                "detail": f"the request body is {size}; at most {self.max_bytes} bytes are accepted "
                "([daemon] max_body_bytes): send a shorter goal or reply"
            }
        ).encode()

    async def _reject(self, send: Any, size: str) -> None:
        body = self._message(size)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    n = int(value)
                except ValueError:
                    n = -1
                if n > self.max_bytes:
                    await self._reject(send, f"{n} bytes")
                    return
        if not any(name == b"content-length" for name, _ in scope.get("headers", [])):
            # No length given (chunked): read the body here, up to the limit, then hand it on.
            chunks: list[bytes] = []
            seen = 0
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    return  # the client went away
                chunks.append(msg.get("body", b""))
                seen += len(chunks[-1])
                if seen > self.max_bytes:
                    await self._reject(send, f"over {self.max_bytes} bytes")
                    return
                if not msg.get("more_body"):
                    break
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
