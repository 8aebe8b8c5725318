"""Deliveries at a later time, months ahead if need be (SQS delays stop at 15 minutes).

`schedule()` writes the encoded message to `bus_schedule` in the caller's transaction, so a reminder
exists if and only if the business change that asked for it committed. The envelope (and so the event
id) is fixed then, which is what makes the delivery's effect exactly once downstream.

`SchedulerLoop` takes due rows (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several loops share
the work; on SQLite the write lock serialises them):
- a row for a topic moves into the outbox: its outbox row is written and the schedule row deleted in
  one transaction, so it is moved exactly once and the relay delivers it with everything else;
- a row for a queue (the outbox only knows topics) is sent by the loop and deleted in the transaction
  that held it; a crash between the send and the commit sends it again, and the consumer's inbox
  drops the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from scte.bus.envelope import Envelope, encode
from scte.bus.storage import bus_outbox, bus_schedule, message_columns, message_from_row

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from scte.bus.consumer import Notifiable
    from scte.bus.contracts import Event
    from scte.bus.transport import Transport

log = logging.getLogger(__name__)


async def schedule(
    session: AsyncSession,
    event: Event,
    *,
    deliver_at: datetime,
    topic: str | None = None,
    queue: str | None = None,
    source: str,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
) -> Envelope:
    """Deliver `event` to `topic` or `queue` at `deliver_at` (aware datetime), if the caller commits."""
    if (topic is None) == (queue is None):
        raise ValueError("give exactly one of topic or queue")
    if deliver_at.tzinfo is None:
        raise ValueError("deliver_at must be timezone-aware")
    envelope, message = encode(event, source=source, correlation_id=correlation_id, causation=causation)
    await session.execute(
        insert(bus_schedule).values(
            deliver_at=deliver_at.astimezone(UTC), topic=topic, queue=queue, **message_columns(message)
        )
    )
    return envelope


class SchedulerLoop:
    """Moves due scheduled messages into the outbox (topics) or sends them (queues)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        transport: Transport | None = None,
        relay: Notifiable | None = None,
        clock: Callable[[], float] | None = None,
        interval_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.transport = transport
        self.relay = relay
        self.clock = clock or (lambda: datetime.now(UTC).timestamp())
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.moved = 0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def run_once(self) -> int:
        """Move every due row (in batches); returns how many moved."""
        total = 0
        while True:
            moved = await self._move_batch()
            total += moved
            if moved < self.batch_size:
                break
        if total:
            self.moved += total
            if self.relay is not None:
                self.relay.notify()
        return total

    async def _move_batch(self) -> int:
        now = self.now()
        async with self.sessionmaker() as session, session.begin():
            query = (
                select(bus_schedule)
                .where(bus_schedule.c.deliver_at <= now)
                .order_by(bus_schedule.c.deliver_at, bus_schedule.c.id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).mappings().all()
            if not rows:
                return 0
            to_topics = [row for row in rows if row["topic"] is not None]
            if to_topics:
                await session.execute(insert(bus_outbox), [_outbox_row(row, now) for row in to_topics])
            to_queues: dict[str, list[Any]] = {}
            for row in rows:
                if row["queue"] is not None:
                    to_queues.setdefault(row["queue"], []).append(message_from_row(dict(row)))
            if to_queues:
                if self.transport is None:
                    raise RuntimeError("scheduled deliveries to queues need SchedulerLoop(transport=...)")
                for queue, messages in to_queues.items():
                    await self.transport.send(queue, messages)
            await session.execute(delete(bus_schedule).where(bus_schedule.c.id.in_([row["id"] for row in rows])))
        return len(rows)

    async def next_due(self) -> datetime | None:
        async with self.sessionmaker() as session:
            value: datetime | None = await session.scalar(
                select(bus_schedule.c.deliver_at).order_by(bus_schedule.c.deliver_at).limit(1)
            )
            return value

    def notify(self) -> None:
        """Something was scheduled: look again now (a short delay may be due before the next tick)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="bus-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduler: moving due messages failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)


def _outbox_row(row: Any, now: datetime) -> dict[str, Any]:
    attributes = row["attributes"] or {}
    return {
        "subject": attributes.get("ce-subject"),
        "topic": row["topic"],
        "event_id": attributes["ce-id"],
        "event_type": attributes["ce-type"],
        "body": row["body"],
        "attributes": attributes,
        "group_id": row["group_id"],
        "deduplication_id": row["deduplication_id"],
        "created_at": now,
        "attempts": 0,
    }
