"""How the CLI reaches the agent: the daemon over HTTP/SSE, or the same runner embedded in-process.

Both clients yield the same items — stored :class:`Event` objects and the :class:`End` / :class:`Lagged`
markers — so the renderer cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from fazai.cli.client_types import ClientError, End, Lagged
from fazai.config import Settings
from fazai.protocol import Event
from fazai.sessions.token import read_token

if TYPE_CHECKING:
    # The runner and the store (SQLAlchemy, Alembic) are imported by the embedded client only:
    # `fazai sessions` through the daemon needs neither.
    from fazai.sessions.manager import RunOptions, SessionManager
    from fazai.store import SessionRecord, Store

Item = Event | End | Lagged


class AgentClient(Protocol):
    """What the CLI needs from a backend."""

    async def generate(
        self, goal: str | None, session: str | None, options: RunOptions
    ) -> AsyncIterator[Item]:
        """Start / continue / resume a run and stream its events."""
        ...

    def events(self, session: str, after: int = 0, follow: bool = True) -> AsyncIterator[Item]:
        """Replay a session's log (and follow it while it runs)."""
        ...

    async def reply(
        self, session: str, action: Any, *, approved: bool | None = None, answer: str | None = None
    ) -> None: ...

    async def abort(self, session: str) -> bool: ...

    async def sessions(self, limit: int = 50) -> list[dict[str, Any]]: ...

    async def session(self, session: str) -> dict[str, Any] | None: ...

    async def fanout(
        self, goal: str, selector: str, options: RunOptions, concurrency: int | None = None
    ) -> dict[str, Any]:
        """Run ``goal`` on every node ``selector`` picks; the per-node report (``FanoutReport``)."""
        ...

    async def nodes(self, op: str, name: str | None = None, body: dict[str, Any] | None = None) -> Any:
        """Inventory operations: list (name = selector), show, add, patch, remove."""
        ...

    async def aclose(self) -> None: ...


# -- daemon ------------------------------------------------------------------------------------


def daemon_url(settings: Settings) -> str:
    host = settings.daemon.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.daemon.port}"


async def detect_daemon(settings: Settings, wait_s: float = 0.5) -> bool:
    """True when a ``fazaid`` answers ``/healthz`` at the configured address."""
    try:
        async with httpx.AsyncClient(timeout=wait_s) as c:
            r = await c.get(daemon_url(settings) + "/healthz")
            return r.status_code == 200 and r.json().get("service") == "fazaid"
    except (httpx.HTTPError, ValueError):
        return False


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str, str | None]]:
    """(event name, data, id) for each SSE message; comments (pings) are skipped."""
    name, data, ident = "message", [], None
    async for line in lines:
        if line == "":
            if data:
                yield name, "\n".join(data), ident
            name, data, ident = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            ident = value


class DaemonClient:
    """The daemon's HTTP API."""

    def __init__(self, base_url: str, token: str | None, *, reconnect_s: float = 10.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url
        # How long a follower whose connection broke keeps trying to reach the daemon again.
        self.reconnect_s = reconnect_s
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(30.0, read=None)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DaemonClient:
        import os

        token = os.environ.get("FAZAI_DAEMON_TOKEN") or read_token(settings.daemon_token_file)
        return cls(daemon_url(settings), token, reconnect_s=settings.daemon.client_reconnect_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _check(self, r: httpx.Response) -> None:
        if r.status_code == 401:
            raise ClientError(
                "the daemon refused the request (401): this user cannot read its token file; "
                "run as root or set FAZAI_DAEMON_TOKEN"
            )
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text
            raise ClientError(f"daemon: {detail} (HTTP {r.status_code})")

    def _unreachable(self, e: Exception) -> ClientError:
        return ClientError(f"cannot reach the daemon at {self.base_url}: {type(e).__name__}: {e}")

    async def _stream(self, method: str, path: str, **kw: Any) -> AsyncIterator[Item]:
        last = 0
        session = ""
        started = False
        try:
            # aclosing: a nested generator left to the garbage collector is closed in another
            # context, and asyncio then logs "asynchronous generator is already running".
            async with contextlib.aclosing(self._stream_once(method, path, kw)) as items:
                async for item in items:
                    started = True
                    if isinstance(item, Event):
                        last, session = item.seq, item.session
                    elif isinstance(item, str):
                        session = item
                        continue
                    yield item
        except httpx.TransportError as e:
            if not started and not session:
                raise self._unreachable(e) from e
            # Mid-stream: the caller replays from `last` (see events(), which reconnects).
            sys.stderr.write(
                f"fazai: lost the connection to the daemon at {self.base_url} ({type(e).__name__})\n"
            )
            yield Lagged(session, last, lost=True)

    async def _stream_once(self, method: str, path: str, kw: dict[str, Any]) -> AsyncIterator[Any]:
        last = 0
        session = ""
        async with self._http.stream(method, path, **kw) as r:
            if r.status_code >= 400:
                await r.aread()
                self._check(r)
            session = r.headers.get("X-Session-Id", "")
            if session:
                yield session  # the session id, before any event (a str, consumed by _stream)
            async for name, data, _ident in parse_sse(r.aiter_lines()):
                payload = json.loads(data)
                if name == "message":
                    ev = Event.model_validate(payload)
                    last, session = ev.seq, ev.session
                    yield ev
                elif name == "end":
                    yield End(payload["session"], payload.get("status"), payload.get("last_seq", last))
                    return
                elif name == "lagged":
                    yield Lagged(payload["session"], payload.get("last_seq", last))
                    return
        # The connection ended without an end marker (the daemon went away): where it stopped.
        yield Lagged(session, last, lost=True)

    async def generate(
        self, goal: str | None, session: str | None, options: RunOptions
    ) -> AsyncIterator[Item]:
        body = {
            "goal": goal,
            "session": session,
            "yes": options.yes,
            "max_iterations": options.max_iterations,
            "model": options.model,
            "mode": options.mode,
            "node": options.node,
        }
        async with contextlib.aclosing(self._stream("POST", "/agent/generate", json=body)) as items:
            async for item in items:
                yield item

    async def events(self, session: str, after: int = 0, follow: bool = True) -> AsyncIterator[Item]:
        """Replay (and follow); while the daemon cannot be reached, retry for ``reconnect_s``."""
        params = {"after": after, "follow": str(follow).lower()}
        deadline = time.monotonic() + self.reconnect_s
        noted = False
        while True:
            try:
                stream = self._stream("GET", f"/agent/sessions/{session}/events", params=params)
                async with contextlib.aclosing(stream) as items:
                    async for item in items:
                        yield item
                return
            except ClientError as e:
                if not isinstance(e.__cause__, httpx.TransportError) or time.monotonic() > deadline:
                    if isinstance(e.__cause__, httpx.TransportError):
                        raise ClientError(
                            f"lost the connection to the daemon at {self.base_url} and it did not "
                            f"answer again within {self.reconnect_s:g} s; session {session} stays "
                            f"resumable: `fazai agent --resume {session}` once it runs again"
                        ) from e
                    raise
                if not noted:
                    sys.stderr.write(
                        f"fazai: reconnecting to {self.base_url} (up to {self.reconnect_s:g} s)…\n"
                    )
                    noted = True
                await asyncio.sleep(0.5)

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise self._unreachable(e) from e

    async def reply(
        self, session: str, action: Any, *, approved: bool | None = None, answer: str | None = None
    ) -> None:
        r = await self._call(
            "POST",
            "/agent/reply",
            json={"session": session, "action": action, "approved": approved, "answer": answer},
        )
        self._check(r)

    async def abort(self, session: str) -> bool:
        r = await self._call("POST", "/agent/abort", json={"session": session})
        self._check(r)
        return bool(r.json().get("aborted"))

    async def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        r = await self._call("GET", "/agent/sessions", params={"limit": limit})
        self._check(r)
        return r.json()

    async def session(self, session: str) -> dict[str, Any] | None:
        r = await self._call("GET", f"/agent/sessions/{session}")
        if r.status_code == 404:
            return None
        self._check(r)
        return r.json()

    async def fanout(
        self, goal: str, selector: str, options: RunOptions, concurrency: int | None = None
    ) -> dict[str, Any]:
        body = {
            "goal": goal,
            "nodes": selector,
            "mode": options.mode,
            "yes": options.yes,
            "model": options.model,
            "max_iterations": options.max_iterations,
            "concurrency": concurrency,
        }
        r = await self._http.post("/agent/fanout", json=body)
        self._check(r)
        return r.json()

    async def nodes(self, op: str, name: str | None = None, body: dict[str, Any] | None = None) -> Any:
        if op == "list":
            r = await self._http.get("/nodes", params={"selector": name} if name else {})
        elif op == "show":
            r = await self._http.get(f"/nodes/{name}")
        elif op == "add":
            r = await self._http.post("/nodes", json=body)
        elif op == "patch":
            r = await self._http.patch(f"/nodes/{name}", json=body)
        elif op == "remove":
            r = await self._http.delete(f"/nodes/{name}")
        else:
            raise ValueError(op)
        self._check(r)
        return r.json()


# -- embedded ----------------------------------------------------------------------------------


class EmbeddedClient:
    """The daemon's runner and store in this process (no daemon running)."""

    def __init__(self, settings: Settings, store: Store, manager: SessionManager):
        self.settings = settings
        self.store = store
        self.manager = manager

    @classmethod
    async def open(cls, settings: Settings, *, runner: bool = True) -> EmbeddedClient:
        from fazai.sessions.manager import SessionManager
        from fazai.sessions.state import FileModeError, secure_state
        from fazai.store import Store

        try:
            secure_state(settings)
        except (FileModeError, OSError) as e:
            raise ClientError(str(e)) from e
        try:
            store = await Store.open(settings.database_url, reserve_bytes=settings.disk_reserve_bytes)
        except Exception as e:
            raise ClientError(str(e)) from e
        manager = SessionManager(settings, store)
        if runner:
            # No recovery here: another embedded CLI may own sessions still marked running.
            await manager.start(recover=False)
        return cls(settings, store, manager)

    async def aclose(self) -> None:
        await self.manager.stop()
        await self.store.close()

    async def _follow(self, session: str, after: int, sub: Any) -> AsyncIterator[Item]:
        from fazai.sessions.hub import Lagged as HubLagged
        from fazai.sessions.hub import RunEnded

        last = after
        for ev in await self.store.events(session, after_seq=after):
            last = ev.seq
            yield ev
        if sub is None:
            rec = await self.store.get_session(session)
            yield End(session, rec.status if rec else None, last)
            return
        try:
            while True:
                item = await sub.get()
                if isinstance(item, Event):
                    if item.seq > last:
                        last = item.seq
                        yield item
                elif isinstance(item, RunEnded):
                    yield End(session, item.status, last)
                    return
                elif isinstance(item, HubLagged):
                    yield Lagged(session, last)
                    return
        finally:
            self.manager.hub.unsubscribe(sub)

    async def generate(
        self, goal: str | None, session: str | None, options: RunOptions
    ) -> AsyncIterator[Item]:
        from fazai.sessions.manager import RunnerError

        m = self.manager
        try:
            if session is None:
                session = (await m.create(goal or "", mode=options.mode, model=options.model)).id
            elif await self.store.get_session(session) is None:
                raise ClientError(f"no session {session} (list them with `fazai sessions`)")
            after = await self.store.last_seq(session)
            # An in-process follower may queue without bound: the renderer is the only reader.
            sub = m.hub.subscribe(session, limit=10**9)
            try:
                await m.start_run(session_id=session, goal=goal, options=options)
            except BaseException:
                m.hub.unsubscribe(sub)
                raise
        except RunnerError as e:
            raise ClientError(str(e)) from e
        async for item in self._follow(session, after, sub):
            yield item

    async def events(self, session: str, after: int = 0, follow: bool = True) -> AsyncIterator[Item]:
        if await self.store.get_session(session) is None:
            raise ClientError(f"no session {session} (list them with `fazai sessions`)")
        sub = (
            self.manager.hub.subscribe(session, limit=10**9)
            if follow and session in self.manager.runs
            else None
        )
        async for item in self._follow(session, after, sub):
            yield item

    async def reply(
        self, session: str, action: Any, *, approved: bool | None = None, answer: str | None = None
    ) -> None:
        from fazai.sessions.manager import RunnerError

        try:
            self.manager.reply(session, action, approved=approved, answer=answer)
        except RunnerError as e:
            raise ClientError(str(e)) from e

    async def abort(self, session: str) -> bool:
        return await self.manager.abort(session)

    async def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        return [r.to_dict() for r in await self.store.list_sessions(limit=limit)]

    async def session(self, session: str) -> dict[str, Any] | None:
        rec: SessionRecord | None = await self.store.get_session(session)
        return rec.to_dict() if rec else None

    async def fanout(
        self, goal: str, selector: str, options: RunOptions, concurrency: int | None = None
    ) -> dict[str, Any]:
        from fazai.sessions.fanout import fan_out
        from fazai.store.selector import SelectorError

        try:
            report = await fan_out(self.manager, selector, goal, options, concurrency=concurrency)
        except SelectorError as e:
            raise ClientError(str(e)) from e
        return report.to_dict()

    async def nodes(self, op: str, name: str | None = None, body: dict[str, Any] | None = None) -> Any:
        from fazai.store.inventory import Inventory, InventoryError
        from fazai.store.selector import SelectorError

        inv = Inventory(self.store.engine)
        off = self.settings.nodes.offline_after_s
        try:
            if op == "list":
                return [n.to_dict(offline_after_s=off) for n in await inv.list(name)]
            if op == "show":
                return (await inv.require(name or "")).to_dict(facts=True, offline_after_s=off)
            if op == "add":
                return (await inv.add_node(**(body or {}))).to_dict(offline_after_s=off)
            if op == "patch":
                b = body or {}
                node = await inv.retag(
                    name or "",
                    add=b.get("add_tags", ()),
                    remove=b.get("remove_tags", ()),
                    labels=b.get("labels"),
                )
                return node.to_dict(offline_after_s=off)
            if op == "remove":
                if not await inv.remove(name or ""):
                    raise ClientError(f"no node {name!r} in the inventory")
                return {"name": name, "removed": True}
        except (InventoryError, SelectorError) as e:
            raise ClientError(str(e)) from e
        raise ValueError(op)


async def connect(settings: Settings, *, embedded: bool | None = None, runner: bool = True) -> AgentClient:
    """The daemon's client when one answers (unless ``embedded``), else the embedded runner."""
    if embedded is not True and await detect_daemon(settings):
        return DaemonClient.from_settings(settings)
    if embedded is False:
        raise ClientError(
            f"no daemon answers at {daemon_url(settings)}: start it (`fazai daemon` or "
            "`systemctl start fazaid`) or drop --daemon"
        )
    return await EmbeddedClient.open(settings, runner=runner)
