"""Publishing with a transactional outbox.

`Publisher.publish` writes the event into `bus_outbox` in the caller's own database transaction, next
to the business change: both commit or neither does, and the request never waits on the broker.
`OutboxRelay` then delivers what was committed, at least once and in order per subject, retrying
with backoff while the broker is down.

    async with session.begin():
        session.add(certification)
        await publisher.publish(session, CertificationAwarded(...), topic="certification")
    # committed: the relay (woken by the commit when the publisher knows it) delivers the event
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, event, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from scte.bus.contracts import Event
from scte.bus.envelope import Envelope, encode
from scte.bus.storage import bus_outbox, message_columns, message_from_row, utcnow
from scte.bus.topology import Topology
from scte.bus.transport import Transport, TransportError

__all__ = ["OutboxRelay", "Publisher"]

_SCHEMA_HASH = func.hashtext(func.current_schema())  # the lock is per schema, like the outbox table

log = logging.getLogger(__name__)

_NOTIFY_KEY = "scte.bus.relay.notify"
_ADVISORY_LOCK_CLASS = 0x5C7E0B05  # pg advisory lock (class, schema hash): one relay per outbox table


class Publisher:
    """Writes events to the outbox of the caller's session; never calls the broker."""

    def __init__(self, source: str, topology: Topology, *, relay: OutboxRelay | None = None) -> None:
        self.source = source
        self.topology = topology
        self.relay = relay

    async def publish(
        self,
        session: AsyncSession,
        event: Event,
        *,
        topic: str,
        causation: Envelope | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """Add the event to the outbox in the session's transaction; its envelope.

        With `causation` (the envelope of the message being handled), the event joins that
        conversation. When the publisher was given a relay, the commit wakes it."""
        spec = self.topology.topic(topic)
        if spec.events and event.event_type not in spec.events:
            raise ValueError(f"topic {topic!r} does not carry {event.event_type!r} (its events: {spec.events})")
        envelope, message = encode(event, source=self.source, causation=causation, correlation_id=correlation_id)
        await session.execute(
            insert(bus_outbox).values(
                subject=envelope.subject,
                topic=topic,
                event_id=envelope.id,
                event_type=envelope.type,
                created_at=utcnow(),
                attempts=0,
                **message_columns(message),
            )
        )
        if self.relay is not None:
            self.relay.notify_on_commit(session)
        return envelope


class OutboxRelay:
    """Delivers committed outbox rows to the broker.

    Rows go out in id order; rows of one subject never overtake each other: when a delivery fails,
    that subject's later rows wait until it succeeds (with exponential backoff), while other subjects
    flow. A row is marked sent only after the transport acknowledged it, so a crash in between
    delivers it again (at least once; FIFO topics deduplicate by event id, consumers by their inbox).

    Run one relay per outbox; on PostgreSQL an advisory lock (per schema) makes extra relays skip their turn.
    """

    def __init__(
        self,
        engine_or_sessionmaker: AsyncEngine | async_sessionmaker[AsyncSession],
        transport: Transport,
        *,
        poll_interval: float = 0.2,
        batch_size: int = 100,
        min_backoff: float = 0.5,
        max_backoff: float = 60.0,
        keep_sent: timedelta | None = timedelta(days=1),
    ) -> None:
        if isinstance(engine_or_sessionmaker, AsyncEngine):
            self.engine = engine_or_sessionmaker
        else:
            bind = engine_or_sessionmaker.kw.get("bind")
            if not isinstance(bind, AsyncEngine):
                raise TypeError("the sessionmaker must be bound to an AsyncEngine")
            self.engine = bind
        self.transport = transport
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.keep_sent = keep_sent
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._postgres = self.engine.dialect.name == "postgresql"
        self._last_purge = 0.0

    # -- wake-ups ---------------------------------------------------------------------------------------

    def notify(self) -> None:
        """A hint that rows were committed: deliver now instead of at the next poll."""
        self._wake.set()

    def notify_on_commit(self, session: AsyncSession) -> None:
        """Call `notify()` when this session's transaction commits."""
        sync = session.sync_session
        if sync.info.get(_NOTIFY_KEY):
            return
        sync.info[_NOTIFY_KEY] = True

        def committed(s: Session) -> None:
            s.info.pop(_NOTIFY_KEY, None)
            self.notify()

        def rolled_back(s: Session) -> None:
            s.info.pop(_NOTIFY_KEY, None)

        event.listen(sync, "after_commit", committed, once=True)
        event.listen(sync, "after_soft_rollback", rolled_back, once=True)

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run in the background until `stop()`."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="scte-bus-outbox-relay")

    async def stop(self, timeout: float | None = None) -> None:
        """Finish the delivery in progress and stop; after `timeout` seconds, cancel it (what it
        published but had not marked is published again later). Undelivered rows stay for next time."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _pending = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                delivered = await self.run_once()
                failures = 0
                await self._maybe_purge()
            except Exception:  # the database itself is unreachable: keep trying, slower
                failures += 1
                log.exception("outbox relay: delivery round failed (%d in a row)", failures)
                delivered = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._backoff(failures))
                continue
            if delivered >= self.batch_size:
                continue  # more is waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _backoff(self, attempts: int) -> float:
        delay = min(self.max_backoff, self.min_backoff * 2 ** max(0, attempts - 1))
        return float(delay * random.uniform(0.8, 1.2))

    # -- one round --------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Deliver what is due now; the number of rows delivered."""
        async with self.engine.connect() as conn:
            if self._postgres:
                locked = await conn.scalar(select(func.pg_try_advisory_lock(_ADVISORY_LOCK_CLASS, _SCHEMA_HASH)))
                await conn.commit()
                if not locked:
                    return 0
            try:
                rows = await self._due(conn)
                return await self._deliver(conn, rows)
            finally:
                if self._postgres:
                    await self._unlock(conn)

    async def _unlock(self, conn: AsyncConnection) -> None:
        """Release the session lock; if that fails (cancelled, connection broken), discard the
        connection instead: closing it releases the lock, and it must not go back to the pool."""
        try:
            await conn.rollback()
            await conn.execute(select(func.pg_advisory_unlock(_ADVISORY_LOCK_CLASS, _SCHEMA_HASH)))
            await conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            raise

    async def _due(self, conn: AsyncConnection) -> Sequence[RowMapping]:
        now = utcnow()
        o = bus_outbox.c
        waiting = select(o.subject).where(o.sent_at.is_(None), o.subject.is_not(None), o.next_attempt_at > now)
        query = (
            select(o.id, o.subject, o.topic, o.body, o.attributes, o.group_id, o.deduplication_id, o.attempts)
            .where(
                o.sent_at.is_(None),
                or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now),
                or_(o.subject.is_(None), o.subject.not_in(waiting)),
            )
            .order_by(o.id)
            .limit(self.batch_size)
        )
        rows = (await conn.execute(query)).mappings().all()
        await conn.commit()
        return rows

    async def _deliver(self, conn: AsyncConnection, rows: Sequence[RowMapping]) -> int:
        delivered = 0
        for run in _runs(rows):
            try:
                await self.transport.publish(run[0]["topic"], [message_from_row(r) for r in run])
            except TransportError as exc:
                await self._failed(conn, run, exc)
                return delivered  # the broker is likely down: the rest waits for the next round
            await conn.execute(
                update(bus_outbox).where(bus_outbox.c.id.in_([r["id"] for r in run])).values(sent_at=utcnow())
            )
            await conn.commit()
            delivered += len(run)
        return delivered

    async def _failed(self, conn: AsyncConnection, run: Sequence[RowMapping], exc: TransportError) -> None:
        now = utcnow()
        log.warning("outbox relay: %d event(s) to %s not delivered, will retry: %s", len(run), run[0]["topic"], exc)
        for row in run:
            attempts = int(row["attempts"]) + 1
            await conn.execute(
                update(bus_outbox)
                .where(bus_outbox.c.id == row["id"])
                .values(
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=self._backoff(attempts)),
                    last_error=str(exc)[:2000],
                )
            )
        await conn.commit()

    async def _maybe_purge(self) -> None:
        if self.keep_sent is None:
            return
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_purge < 60:
            return
        self._last_purge = loop_time
        await self.purge_sent(self.keep_sent)

    async def purge_sent(self, older_than: timedelta) -> int:
        """Delete rows sent more than `older_than` ago; how many."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(bus_outbox).where(bus_outbox.c.sent_at < utcnow() - older_than))
            return int(result.rowcount or 0)

    async def pending(self) -> int:
        """Rows not yet delivered (a health metric: it grows while the broker is down)."""
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).where(bus_outbox.c.sent_at.is_(None))) or 0)


def _runs(rows: Sequence[RowMapping]) -> list[list[RowMapping]]:
    """Consecutive rows for the same topic, so each run is one publish (batched by the transport)."""
    out: list[list[RowMapping]] = []
    for row in rows:
        if out and out[-1][0]["topic"] == row["topic"]:
            out[-1].append(row)
        else:
            out.append([row])
    return out
