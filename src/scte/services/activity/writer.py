"""Buffered writes: activity entries are collected and inserted in batches, at FLUSH_AT_SIZE entries
or FLUSH_AFTER after the oldest waiting one, whichever comes first.

A handler awaits the flush of its own entry before its message is acknowledged, so an entry is never
acknowledged before it is stored; many handlers wait on one batch. The insert skips entries whose
id exists (a redelivered event), and page views already stored within PAGE_VIEW_COLLAPSE are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scte.kit.clock import Clock
from scte.kit.db import dialect_insert

from .db import entries
from .domain import (
    FLUSH_AFTER,
    FLUSH_AT_SIZE,
    PAGE_VIEW_COLLAPSE,
    RETENTION,
    ActivityEntry,
    ActivityKind,
    collapse_page_views,
)

__all__ = ["ActivityWriter"]

log = logging.getLogger(__name__)


class ActivityWriter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        flush_at: int = FLUSH_AT_SIZE,
        flush_after: float = FLUSH_AFTER.total_seconds(),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.flush_at = flush_at
        self.flush_after = flush_after
        self._buffer: list[tuple[ActivityEntry, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self.batches = 0
        self.written = 0

    async def add(self, entry: ActivityEntry) -> None:
        """Buffer an entry; returns once it is stored (or raises if its batch failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((entry, future))
        if len(self._buffer) >= self.flush_at:
            await self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_after, lambda: loop.create_task(self.flush()))
        await future

    async def flush(self) -> int:
        """Write what is buffered now, in one transaction."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        async with self._lock:
            try:
                written = await self._write([entry for entry, _ in batch])
            except Exception as exc:
                log.exception("activity: writing a batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return 0
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        return written

    async def _write(self, batch: list[ActivityEntry]) -> int:
        kept = collapse_page_views(batch)
        async with self.sessionmaker() as session, session.begin():
            views = [e for e in kept if e.kind is ActivityKind.PAGE_VIEW]
            if views:
                recent = await session.execute(
                    select(entries.c.member_id, entries.c.path, entries.c.occurred_at).where(
                        entries.c.kind == ActivityKind.PAGE_VIEW.value,
                        or_(*(and_(entries.c.member_id == v.member_id, entries.c.path == v.path) for v in views)),
                        entries.c.occurred_at >= min(v.occurred_at for v in views) - PAGE_VIEW_COLLAPSE,
                    )
                )
                stored: dict[tuple[str, str | None], list[datetime]] = {}
                for member_id, path, at in recent:
                    stored.setdefault((member_id, path), []).append(at)
                kept = [
                    e
                    for e in kept
                    if e.kind is not ActivityKind.PAGE_VIEW
                    or not any(
                        abs(e.occurred_at - at) < PAGE_VIEW_COLLAPSE for at in stored.get((e.member_id, e.path), [])
                    )
                ]
            if not kept:
                return 0
            rows = [
                {
                    "activity_id": e.activity_id,
                    "member_id": e.member_id,
                    "kind": e.kind.value,
                    "occurred_at": e.occurred_at,
                    "summary": e.summary,
                    "path": e.path,
                }
                for e in kept
            ]
            await session.execute(
                dialect_insert(session)(entries).on_conflict_do_nothing(index_elements=["activity_id"]), rows
            )
        self.batches += 1
        self.written += len(rows)
        return len(rows)

    async def purge_expired(self) -> int:
        """Delete entries older than RETENTION."""
        cutoff = self.clock.now() - RETENTION
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(delete(entries).where(entries.c.occurred_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
