"""Actions sent to nodes, in the store: queued → running → done | failed.

A row is written before a frame leaves, and a result is acknowledged to the agent only after it is
committed here, so a fazaid restart loses neither the action nor its result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fazai.fleet.schema import fleet_actions
from fazai.protocol import utcnow_iso

FINAL = ("done", "failed")


class ActionStore:
    """Queries over ``fleet_actions``."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def create(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert queued actions (``id``, ``node``, ``kind``, ``spec``, ``session``) in one transaction."""
        now = utcnow_iso()
        values = [{**r, "state": "queued", "created_at": now, "updated_at": now, "attempts": 0} for r in rows]
        if values:
            async with self.engine.begin() as conn:
                await conn.execute(insert(fleet_actions), values)

    async def mark_running(self, ids: list[str]) -> None:
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(fleet_actions)
                .where(fleet_actions.c.id.in_(ids), fleet_actions.c.state.not_in(FINAL))
                .values(state="running", updated_at=utcnow_iso(), attempts=fleet_actions.c.attempts + 1)
            )

    async def finish(self, action: str, state: str, exit_code: int | None, result: dict[str, Any]) -> bool:
        """Store a result once; False when the action already had one (a redelivery)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(fleet_actions)
                .where(fleet_actions.c.id == action, fleet_actions.c.state.not_in(FINAL))
                .values(state=state, exit_code=exit_code, result=result, updated_at=utcnow_iso())
            )
        return res.rowcount == 1

    async def finish_many(self, items: list[tuple[str, str, int | None, dict[str, Any]]]) -> list[bool]:
        """:meth:`finish` for many ``(action, state, exit_code, result)`` in one transaction: which
        were new. One SELECT per 500 ids and one executemany UPDATE, not a statement per action (a
        fan-out to 10,000 nodes commits its results in a few batches; bench/bench_fleet.py)."""
        if not items:
            return []
        now = utcnow_iso()
        ids = [i[0] for i in items]
        async with self.engine.begin() as conn:
            open_ids: set[str] = set()
            for k in range(0, len(ids), 500):
                q = select(fleet_actions.c.id).where(
                    fleet_actions.c.id.in_(ids[k : k + 500]), fleet_actions.c.state.not_in(FINAL)
                )
                open_ids.update(r.id for r in (await conn.execute(q)).all())
            fresh: list[bool] = []
            rows = []
            for action, state, exit_code, result in items:
                new = action in open_ids
                open_ids.discard(action)  # the same action twice in one batch: the first one counts
                fresh.append(new)
                if new:
                    rows.append({"b_id": action, "b_state": state, "b_exit": exit_code, "b_result": result})
            if rows:
                await conn.execute(
                    update(fleet_actions)
                    # Not `not_in`: an expanding IN cannot be part of an executemany.
                    .where(
                        fleet_actions.c.id == bindparam("b_id"),
                        *(fleet_actions.c.state != f for f in FINAL),
                    )
                    .values(
                        state=bindparam("b_state"),
                        exit_code=bindparam("b_exit"),
                        result=bindparam("b_result"),
                        updated_at=now,
                    ),
                    rows,
                )
        return fresh

    async def get(self, action: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(fleet_actions).where(fleet_actions.c.id == action))).first()
        return dict(row._mapping) if row else None

    async def get_many(self, actions: list[str]) -> list[dict[str, Any]]:
        """The rows of ``actions`` that exist."""
        if not actions:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(fleet_actions).where(fleet_actions.c.id.in_(actions)))).all()
        return [dict(r._mapping) for r in rows]

    async def open_for(self, node: str) -> list[dict[str, Any]]:
        """Actions of ``node`` not finished yet, oldest first (resent when it reconnects)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_actions)
                    .where(fleet_actions.c.node == node, fleet_actions.c.state.not_in(FINAL))
                    .order_by(fleet_actions.c.created_at, fleet_actions.c.id)
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    async def nodes_with_open(self) -> set[str]:
        """Nodes with actions not finished (read once at start: a restart's leftovers)."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(fleet_actions.c.node).where(fleet_actions.c.state.not_in(FINAL)).distinct()
                )
            ).all()
        return {r.node for r in rows}

    async def fail_open(self, node: str, reason: str) -> int:
        """Fail every open action of ``node`` (it was revoked)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(fleet_actions)
                .where(fleet_actions.c.node == node, fleet_actions.c.state.not_in(FINAL))
                .values(state="failed", result={"error": reason}, updated_at=utcnow_iso())
            )
        return res.rowcount
