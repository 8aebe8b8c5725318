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
import sqlite3
import weakref
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.types import TypeEngine

from scte.bus import observe
from scte.bus.contracts import Event
from scte.bus.database import closes_inline, inline_sqlite3, run_inline
from scte.bus.envelope import Envelope, encode
from scte.bus.storage import bus_outbox, message_columns, message_from_row, utcnow
from scte.bus.topology import Topology
from scte.bus.transport import OutgoingMessage, Transport, TransportError

__all__ = ["OutboxRelay", "Publisher"]

_SCHEMA_HASH = func.hashtext(func.current_schema())  # the lock is per schema, like the outbox table

log = logging.getLogger(__name__)

T = TypeVar("T")
_Row = Mapping[Any, Any]  # an outbox row: a RowMapping, or a dict from the inline read

_NOTIFY_KEY = "scte.bus.relay.notify"
_INSERT_OUTBOX = insert(bus_outbox)  # statements built once: building one per call costs more than SQLite's work
_o = bus_outbox.c
_DUE = (
    select(_o.id, _o.subject, _o.topic, _o.body, _o.attributes, _o.group_id, _o.deduplication_id, _o.attempts)
    .where(
        _o.sent_at.is_(None),
        or_(_o.next_attempt_at.is_(None), _o.next_attempt_at <= bindparam("now")),
        or_(
            _o.subject.is_(None),
            _o.subject.not_in(
                select(_o.subject).where(
                    _o.sent_at.is_(None), _o.subject.is_not(None), _o.next_attempt_at > bindparam("now")
                )
            ),
        ),
    )
    .order_by(_o.id)
    .limit(bindparam("limit"))
)
_MARK_SENT = update(bus_outbox).where(_o.id.in_(bindparam("ids", expanding=True))).values(sent_at=bindparam("now"))
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
        if causation is None and correlation_id is None:
            correlation_id = observe.correlation_id.get()  # the user action in hand, if any
        observer = observe.get_observer()
        if observer is None:
            envelope, message = encode(event, source=self.source, causation=causation, correlation_id=correlation_id)
        else:  # a publish span, current while encoding: the envelope carries its trace context
            token = observer.publishing(self.source, topic, event.event_type)
            try:
                envelope, message = encode(
                    event, source=self.source, causation=causation, correlation_id=correlation_id
                )
            except BaseException:
                observer.published(token, None)
                raise
            observer.published(token, envelope)
        raw = await inline_sqlite3(session, _INSERT_OUTBOX)
        if raw is None or not _insert_inline(raw, session, envelope, topic, message):
            await session.execute(
                _INSERT_OUTBOX,
                {
                    "subject": envelope.subject,
                    "topic": topic,
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "created_at": utcnow(),
                    "attempts": 0,
                    "sent_at": None,
                    "next_attempt_at": None,
                    "last_error": None,
                    **message_columns(message),
                },
            )
        if self.relay is not None:
            self.relay.notify_on_commit(session)
        return envelope


_INLINE_INSERT = (
    "INSERT INTO bus_outbox (subject, topic, event_id, event_type, body, attributes, group_id,"
    " deduplication_id, created_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
_binders: weakref.WeakKeyDictionary[Dialect, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = (
    weakref.WeakKeyDictionary()
)


def _insert_inline(
    raw: sqlite3.Connection, session: AsyncSession, envelope: Envelope, topic: str, message: OutgoingMessage
) -> bool:
    """The outbox row straight on the inline driver's `sqlite3` connection, in the session's
    transaction (`scte.bus.database.inline_sqlite3`); False when another process holds the lock.
    The created time and the attributes go through the columns' own bind processors, taken once per
    dialect, so the row is what `session.execute(insert(bus_outbox))` writes."""
    dialect = session.sync_session.get_bind(clause=_INSERT_OUTBOX).dialect
    binders = _binders.get(dialect)
    if binders is None:
        binders = _binders[dialect] = (_binder(_o.attributes.type, dialect), _binder(_o.created_at.type, dialect))
    attributes, created_at = binders
    return (
        run_inline(
            raw,
            _INLINE_INSERT,
            (
                envelope.subject,
                topic,
                envelope.id,
                envelope.type,
                message.body,
                attributes(dict(message.attributes)),
                message.group_id,
                message.deduplication_id,
                created_at(utcnow()),
            ),
        )
        is not None
    )


_MARK_INLINE = "UPDATE bus_outbox SET sent_at = ? WHERE id IN (%s)"
_DUE_INLINE = (  # _DUE for SQLite, as SQLAlchemy compiles it (`sent_at IS NULL` for the partial index)
    "SELECT id, subject, topic, body, attributes, group_id, deduplication_id, attempts FROM bus_outbox"
    " WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
    " AND (subject IS NULL OR (subject NOT IN (SELECT subject FROM bus_outbox"
    " WHERE sent_at IS NULL AND subject IS NOT NULL AND next_attempt_at > ?)))"
    " ORDER BY id LIMIT ?"
)
_relay_codecs: weakref.WeakKeyDictionary[Dialect, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = (
    weakref.WeakKeyDictionary()
)


def _binder(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any]:
    process = type_.bind_processor(dialect)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


class OutboxRelay:
    """Delivers committed outbox rows to the broker.

    Rows go out in id order; rows of one subject never overtake each other: when a delivery fails,
    that subject's later rows wait until it succeeds (with exponential backoff), while other subjects
    flow. A row is marked sent only after the transport acknowledged it, so a crash in between
    delivers it again (at least once; FIFO topics deduplicate by event id, consumers by their inbox).

    A round reads up to `batch_size` due rows, publishes them (consecutive rows of a topic together;
    such a run in up to `lanes` concurrent publishes, all rows of a subject in the same lane) and marks
    the acknowledged ones in one statement: two short transactions per round however many rows. The
    background relay on SQLite writes a round's marks with the next round's read instead (one
    transaction per round, none on the way to the consumer; see `_round`).

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
        lanes: int = 4,
        mark_delay: float | None = None,
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
        self.lanes = lanes
        self.mark_delay = poll_interval if mark_delay is None else mark_delay
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._postgres = self.engine.dialect.name == "postgresql"
        self._inline = closes_inline(self.engine)
        self._last_purge = 0.0

    # -- wake-ups ---------------------------------------------------------------------------------------

    def notify(self) -> None:
        """A hint that rows were committed: deliver now instead of at the next poll."""
        self._wake.set()

    def notify_on_commit(self, session: AsyncSession) -> None:
        """Call `notify()` when this session's transaction commits.

        The relays to notify ride in `session.info`, read by two listeners registered once on the
        `Session` class: listening per session (`event.listen(session, ...)`) builds listener
        collections on every call and cost more than the outbox insert itself."""
        _listen_for_commits()
        relays = session.sync_session.info.setdefault(_NOTIFY_KEY, [])
        if self not in relays:
            relays.append(self)

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
        unmarked: list[int] = []  # SQLite: published, marked sent with the next round's read
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    if self._postgres:
                        delivered = await self.run_once()
                    else:
                        delivered = await self._round(unmarked)
                    failures = 0
                    await self._maybe_purge()
                except Exception:  # the database itself is unreachable: keep trying, slower
                    failures += 1
                    log.exception("outbox relay: delivery round failed (%d in a row)", failures)
                    await self._sleep(self._backoff(failures))
                    continue
                if delivered >= self.batch_size:
                    continue  # more is waiting
                # Marks owed: written with the next round's read, at the next commit or after
                # `mark_delay` (the poll interval): never on the path from the broker to the consumer
                # (a mark due 2 ms later landed on the next event's path and cost it a millisecond
                # over HTTP), and one transaction instead of two.
                await self._sleep(self.mark_delay if unmarked else self.poll_interval)
        finally:
            if unmarked:
                with contextlib.suppress(Exception):  # else published again later: at least once
                    await self._mark(unmarked)

    async def _sleep(self, seconds: float) -> None:
        """Until `notify()` or `seconds` (`asyncio.timeout`: no task per wait, unlike `wait_for`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _round(self, unmarked: list[int]) -> int:
        """One round of the background relay on SQLite: mark what the last round published and read
        what is due, in one transaction; publish it. What was published is left in `unmarked` for
        the next round (a crash before that publishes it again: at least once, and in order, since
        those rows stay ahead of any later row of their subject). Failures are recorded at once."""
        conn = await self.engine.connect()
        try:
            async with conn.begin():
                inline = self._round_inline(conn, unmarked) if self._inline else None
                rows: Sequence[_Row]
                if inline is not None:
                    rows = inline
                else:
                    if unmarked:
                        await conn.execute(_MARK_SENT, {"ids": unmarked, "now": utcnow()})
                    rows = (await conn.execute(_DUE, {"now": utcnow(), "limit": self.batch_size})).mappings().all()
        finally:
            if self._inline:
                await conn.close()  # see `closes_inline`: no task and no loop turns on the way to the broker
            else:
                await conn.__aexit__(None, None, None)
        unmarked.clear()
        sent, failed = await self._publish(rows)
        if failed:
            await self._record(None, sent, failed)
        else:
            unmarked.extend(sent)
        return len(sent)

    def _round_inline(self, conn: AsyncConnection, unmarked: list[int]) -> list[dict[str, Any]] | None:
        """The round's mark and read straight on the inline driver's `sqlite3` connection, in the
        transaction begun on `conn` (through SQLAlchemy they cost more than half of a one-row round:
        an execution context each, bind and result processing); None when that connection is not
        at hand or another process holds the lock (nothing was done: the caller goes through
        SQLAlchemy). The times and attributes go through the columns' own processors, as there."""
        adapter = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        raw = getattr(getattr(adapter, "_connection", None), "_connection", None)
        if not isinstance(raw, sqlite3.Connection) or not raw.in_transaction:
            return None
        dialect = self.engine.dialect
        codecs = _relay_codecs.get(dialect)
        if codecs is None:
            codecs = _relay_codecs[dialect] = (
                _binder(_o.sent_at.type, dialect),
                _o.attributes.type.result_processor(dialect, None) or _same,
            )
        when, attributes = codecs
        now = when(utcnow())
        if unmarked and run_inline(raw, _MARK_INLINE % ", ".join("?" * len(unmarked)), (now, *unmarked)) is None:
            return None
        found = run_inline(raw, _DUE_INLINE, (now, now, self.batch_size))
        if found is None:
            return None  # the marks (if any) went through: written again by the caller, to the same effect
        return [
            {
                "id": id_,
                "subject": subject,
                "topic": topic,
                "body": body,
                "attributes": attributes(attrs),
                "group_id": group_id,
                "deduplication_id": deduplication_id,
                "attempts": attempts,
            }
            for id_, subject, topic, body, attrs, group_id, deduplication_id, attempts in found
        ]

    async def _mark(self, ids: list[int]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_MARK_SENT, {"ids": ids, "now": utcnow()})
        ids.clear()

    def _backoff(self, attempts: int) -> float:
        delay = min(self.max_backoff, self.min_backoff * 2 ** max(0, attempts - 1))
        return float(delay * random.uniform(0.8, 1.2))

    # -- one round --------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Deliver what is due now; the number of rows delivered.

        No connection is held while the broker is called (on SQLite the engine has one, which the
        publishers and handlers of the process need meanwhile); on PostgreSQL the advisory lock
        keeps its connection for the round."""
        if not self._postgres:
            return await self._deliver(None, await self._due(None))
        async with self.engine.connect() as conn:
            locked = await conn.scalar(select(func.pg_try_advisory_lock(_ADVISORY_LOCK_CLASS, _SCHEMA_HASH)))
            await conn.commit()
            if not locked:
                return 0
            try:
                return await self._deliver(conn, await self._due(conn))
            finally:
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

    async def _transaction(self, conn: AsyncConnection | None, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` in a transaction of its own: on `conn` when given (it holds the advisory lock),
        else on a connection taken from the pool for just this long."""
        if conn is None:
            async with self.engine.begin() as own:
                return await work(own)
        result = await work(conn)
        await conn.commit()
        return result

    async def _due(self, conn: AsyncConnection | None) -> Sequence[_Row]:
        async def read(c: AsyncConnection) -> Sequence[_Row]:
            return (await c.execute(_DUE, {"now": utcnow(), "limit": self.batch_size})).mappings().all()

        return await self._transaction(conn, read)

    async def _deliver(self, conn: AsyncConnection | None, rows: Sequence[_Row]) -> int:
        """Publish the rows and mark what the broker acknowledged in one statement."""
        sent, failed = await self._publish(rows)
        await self._record(conn, sent, failed)
        return len(sent)

    async def _publish(self, rows: Sequence[_Row]) -> tuple[list[int], list[tuple[Sequence[_Row], TransportError]]]:
        """Publish the rows, run by run (consecutive rows of one topic): the ids the broker
        acknowledged and the lanes that failed. A run goes out in up to `lanes` concurrent
        publishes, each subject in one lane, so order per subject holds. At the first run that
        fails, the rest waits for the next round."""
        sent: list[int] = []
        failed: list[tuple[Sequence[_Row], TransportError]] = []
        for run in _runs(rows):
            lanes = _lanes(run, self.lanes)
            if len(lanes) == 1:  # no gather: a task per publish costs loop turns on the way to the broker
                try:
                    await self.transport.publish(run[0]["topic"], [message_from_row(r) for r in run])
                except TransportError as exc:
                    failed.append((run, exc))
                else:
                    sent.extend(r["id"] for r in run)
            else:
                results = await asyncio.gather(
                    *(self.transport.publish(run[0]["topic"], [message_from_row(r) for r in lane]) for lane in lanes),
                    return_exceptions=True,
                )
                for lane, result in zip(lanes, results, strict=True):
                    if result is None:
                        sent.extend(r["id"] for r in lane)
                    elif isinstance(result, TransportError):
                        failed.append((lane, result))
                    else:
                        raise result
            if failed:
                break  # the broker is likely down: the rest waits for the next round
        return sent, failed

    async def _record(
        self,
        conn: AsyncConnection | None,
        sent: list[int],
        failed: list[tuple[Sequence[_Row], TransportError]],
    ) -> None:
        """Mark the sent rows and the failed ones' next attempt, in one transaction."""
        if not sent and not failed:
            return

        async def mark(c: AsyncConnection) -> None:
            if sent:
                await c.execute(_MARK_SENT, {"ids": sent, "now": utcnow()})
            for lane, exc in failed:
                await self._failed(c, lane, exc)

        await self._transaction(conn, mark)

    async def _failed(self, conn: AsyncConnection, run: Sequence[_Row], exc: TransportError) -> None:
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


_listening = False


def _listen_for_commits() -> None:
    global _listening
    if not _listening:
        _listening = True
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_soft_rollback", _rolled_back)


def _committed(session: Session) -> None:
    for relay in session.info.pop(_NOTIFY_KEY, ()):
        relay.notify()


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction; a savepoint's rollback leaves the rest to commit
        session.info.pop(_NOTIFY_KEY, None)


def _lanes(run: Sequence[_Row], count: int) -> list[list[_Row]]:
    """A run cut into at most `count` lanes, in order within each; all rows of a subject in one lane
    (rows without a subject are spread evenly: they have no order to keep)."""
    if count <= 1 or len(run) <= 10:
        return [list(run)]
    lanes: list[list[_Row]] = [[] for _ in range(count)]
    for position, row in enumerate(run):
        subject = row["subject"]
        lane = position if subject is None else zlib.crc32(subject.encode())
        lanes[lane % count].append(row)
    return [lane for lane in lanes if lane]


def _runs(rows: Sequence[_Row]) -> list[list[_Row]]:
    """Consecutive rows for the same topic, so each run is one publish (batched by the transport)."""
    out: list[list[_Row]] = []
    for row in rows:
        if out and out[-1][0]["topic"] == row["topic"]:
            out[-1].append(row)
        else:
            out.append([row])
    return out
