"""The consumer runtime: receive from one queue, run a handler per event, acknowledge exactly once.

Delivery is at least once (SQS); effects are exactly once because the handler's writes and the inbox
row `(consumer, event id)` commit in one transaction, and a redelivered event whose inbox row exists is
acknowledged without running the handler again.

A message ends in one of four ways (`Outcome`):
- processed (or a duplicate): the transaction committed, the message is deleted;
- retry: the handler failed (raised or timed out) and the message has been received fewer than the
  queue's `max_receive_count` times; its visibility is set to an exponential backoff with jitter, so
  the broker hands it out again later;
- dead-lettered: it cannot be decoded, its type is unknown, its body does not match the schema, no
  handler takes it, or it failed `max_receive_count` times; it is sent to the queue's dead-letter queue
  with the failure recorded in one attribute (see `DEAD_LETTER_ATTRIBUTE`) and the original is deleted;
- released: the consumer stopped before starting it; its visibility is set to 0.

The broker's own redrive policy stays as the safety net for consumers that die repeatedly on a message.

The parts around it live beside it: `handlers` (what a handler is and may ask for), `outcomes` (how a
message ends, the retry backoff, the counts), `dead_letters` (the dead-letter record) and
`acknowledgements` (deletes gathered into batches, the free slots the pollers take).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import signal
import sqlite3
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from scte.bus import observe
from scte.bus.acknowledgements import _Deletes, _Slots
from scte.bus.contracts import Event, EventRegistry
from scte.bus.contracts import registry as default_registry
from scte.bus.database import closes_inline, inline_sqlite3, run_inline
from scte.bus.dead_letters import (
    DEAD_LETTER_ATTRIBUTE,
    MAX_ATTRIBUTES,
    MAX_ERROR_CHARS,
    dead_letter_message,
    decode_reason,
    traceback_digest,
)
from scte.bus.envelope import DecodeError, Envelope, decode
from scte.bus.handlers import BUILTIN_DEPENDENCIES, Handler, Handlers, Notifiable, Publish, Schedule, _normalise, _Route
from scte.bus.outcomes import ConsumerStats, HandlerTimeout, Outcome, RetryPolicy
from scte.bus.scheduler import schedule as schedule_event
from scte.bus.storage import bus_inbox
from scte.bus.transport import IncomingMessage, OutgoingMessage, Transport, TransportError

__all__ = [  # what lived here before the split, still importable from here
    "BUILTIN_DEPENDENCIES",
    "DEAD_LETTER_ATTRIBUTE",
    "MAX_ATTRIBUTES",
    "MAX_ERROR_CHARS",
    "Consumer",
    "ConsumerStats",
    "Handler",
    "HandlerTimeout",
    "Handlers",
    "Notifiable",
    "Outcome",
    "Publish",
    "RetryPolicy",
    "Schedule",
    "_Deletes",
    "_Slots",
    "decode_reason",
    "run_consumers",
    "traceback_digest",
]

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from sqlalchemy.orm import SessionTransaction

    from scte.bus.publisher import Publisher
    from scte.bus.topology import QueueSpec, Topology

log = logging.getLogger(__name__)
# Codes with which a broker refuses to extend a reservation for good: the handle is outdated or the
# message no longer in flight, or (InvalidParameterValue) SQS's 12-hour cap from the receive.
# (MessageNotInflight as the in-process engine names it, and as boto3 reports SQS's query code.)
_NOT_EXTENDABLE = frozenset(
    {
        "InvalidParameterValue",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
        "ReceiptHandleIsInvalid",
    }
)

T = TypeVar("T")

_INSERT_INBOX = insert(bus_inbox)
_SEEN = select(bus_inbox.c.event_id).where(
    bus_inbox.c.consumer == bindparam("consumer"), bus_inbox.c.event_id.in_(bindparam("ids", expanding=True))
)

_SEEN_INLINE = "SELECT event_id FROM bus_inbox WHERE consumer = ? AND event_id IN (%s)"
_INSERT_INBOX_INLINE = "INSERT INTO bus_inbox (consumer, event_id, processed_at) VALUES (?, ?, ?)"
_processed_binders: weakref.WeakKeyDictionary[Dialect, Callable[[Any], Any]] = weakref.WeakKeyDictionary()


def _processed_at(session: AsyncSession) -> Callable[[Any], Any]:
    """The bind processor of `bus_inbox.processed_at` for the session's dialect (taken once per dialect)."""
    dialect = session.sync_session.get_bind(clause=_INSERT_INBOX).dialect
    process = _processed_binders.get(dialect)
    if process is None:
        process = _processed_binders[dialect] = bus_inbox.c.processed_at.type.bind_processor(dialect) or _same
    return process


def _same(value: Any) -> Any:
    return value


def _savepoint(session: AsyncSession, root: SessionTransaction | None, raw: sqlite3.Connection) -> bool:
    """Whether the batch's transaction is still the session's, active, and open on `raw`: then a
    savepoint may go straight to `sqlite3`."""
    return root is not None and root.is_active and session.sync_session.get_transaction() is root and raw.in_transaction


class _Duplicate(Exception):
    """Raised inside the inbox transaction to roll it back: another delivery committed first."""


@dataclass(eq=False, slots=True)
class _Lease:
    message: IncomingMessage
    deadline: float  # loop time at which the broker would hand the message out again
    started: bool = False
    done: bool = False
    extendable: bool = True  # False once the broker refused to extend it (see Consumer._beat)

    def settled(self) -> bool:
        """`done`, read again after an await (a method: type checkers keep no narrowing across it)."""
        return self.done


class Consumer:
    """Runs handlers for the messages of one queue.

    `handlers` maps event types (the string or the `Event` class) to plain async functions. A handler
    declares what it needs by parameter name: `event` (the decoded `Event`), `envelope`, `message` (the
    `IncomingMessage`), `session` (the `AsyncSession` of the inbox transaction), `publish` (adds an event
    to the outbox in that transaction, caused by the incoming one; a `Publisher` given a relay wakes it
    on commit), `schedule` (a later delivery, same
    transaction), or any name in `dependencies`. Unknown names fail at construction, not at 3 a.m.

    Without a `sessionmaker` there is no inbox: effects are at least once.

    On a standard queue the messages of one receive (up to 10) are handled in one transaction
    (`handle_many`: one commit for the batch, each handler in a savepoint); `transaction_per_event=True`
    gives each message a transaction of its own instead (what bench/bus.py compares).
    """

    def __init__(
        self,
        transport: Transport,
        topology: Topology,
        registry: EventRegistry | None = None,
        *,
        queue: str,
        handlers: Handlers,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        publisher: Publisher | None = None,
        dependencies: Mapping[str, object] | None = None,
        concurrency: int = 10,
        name: str | None = None,
        handler_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        wait_seconds: int = 20,
        pollers: int | None = None,
        rng: random.Random | None = None,
        transaction_per_event: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.transport = transport
        self.topology = topology
        self.registry = registry or default_registry
        self.spec: QueueSpec = topology.queue(queue)
        self.queue = queue
        self.name = name or queue
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.dependencies = dict(dependencies or {})
        self.concurrency = concurrency
        self.handler_timeout = handler_timeout
        self.retry = retry or RetryPolicy()
        self.wait_seconds = wait_seconds
        self.pollers = pollers or max(1, min(4, -(-concurrency // 10)))
        self.rng = rng or random.Random()
        self.transaction_per_event = transaction_per_event
        self.stats = ConsumerStats()
        self._routes = {t: self._route(t, h) for t, h in _normalise(handlers).items()}
        self._inline = sessionmaker is not None and closes_inline(sessionmaker.kw.get("bind"))
        self._slots = _Slots(concurrency)
        self._deletes = _Deletes(transport, queue)
        self._leases: dict[str, _Lease] = {}
        self._lanes: dict[str, deque[_Lease]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pollers: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False

    # -- wiring ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A session of the inbox transaction, closed without SQLAlchemy's task when the database
        runs on the inline driver (`scte.bus.database.closes_inline`)."""
        assert self.sessionmaker is not None
        session = self.sessionmaker()
        if not self._inline:
            async with session:
                yield session
            return
        try:
            yield session
        finally:
            await session.close()

    def _route(self, event_type: str, handler: Handler) -> _Route:
        parameters = []
        for parameter in inspect.signature(handler).parameters.values():
            name = parameter.name
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if name in self.dependencies or name in ("event", "envelope", "message"):
                parameters.append(name)
            elif name in ("session", "publish", "schedule"):
                if self.sessionmaker is None:
                    raise TypeError(
                        f"handler {handler.__qualname__} of {event_type} needs `{name}`: give a sessionmaker"
                    )
                if name != "session" and self.publisher is None:
                    raise TypeError(f"handler {handler.__qualname__} of {event_type} needs `{name}`: give a publisher")
                parameters.append(name)
            elif parameter.default is inspect.Parameter.empty:
                raise TypeError(f"handler {handler.__qualname__} of {event_type}: nothing provides `{name}`")
        return _Route(handler, tuple(parameters), getattr(handler, "__qualname__", repr(handler)))

    @property
    def max_receive_count(self) -> int:
        return self.spec.max_receive_count

    @property
    def visibility_timeout(self) -> int:
        return self.spec.visibility_timeout

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._routes)

    # -- one message -------------------------------------------------------------------------------

    async def handle(self, message: IncomingMessage, *, acknowledge: bool = True) -> Outcome:
        """Process one message to its end (see the module docstring).

        With `acknowledge=False` (the Lambda adapter) a settled message is not deleted: the caller
        reports it as a success and the event source mapping deletes it.
        """
        try:
            envelope, event = decode(message, self.registry)
        except DecodeError as exc:
            log.warning("%s: dead-lettering message %s: %s (%s)", self.name, message.message_id, exc.reason, exc)
            return await self._dead_letter(message, decode_reason(exc), exc, acknowledge)
        route = self._routes.get(envelope.type)
        if route is None:
            log.warning("%s: no handler for %s (message %s)", self.name, envelope.type, message.message_id)
            return await self._dead_letter(
                message, "no-handler", LookupError(f"no handler for {envelope.type}"), acknowledge
            )
        observer = observe.get_observer()
        token = None if observer is None else observer.handling(self.name, self.queue, envelope, message, route.name)
        try:
            duplicate = await self._run(route, message, envelope, event)
        except Exception as exc:
            if observer is not None:
                observer.handled(token, exc)
            return await self._fail(message, exc, acknowledge)
        except BaseException as exc:
            if observer is not None:
                observer.handled(token, exc)
            raise
        if observer is not None:
            observer.handled(token, None, duplicate)
        if acknowledge:
            await self._delete(message)
        outcome = Outcome.DUPLICATE if duplicate else Outcome.PROCESSED
        self._count(outcome)
        return outcome

    async def handle_many(self, messages: Sequence[IncomingMessage], *, acknowledge: bool = True) -> list[Outcome]:
        """Process messages of a standard queue received together, in one inbox transaction.

        Each handler runs in a savepoint: one that fails rolls back alone and takes the failure path;
        the others commit together with their inbox rows, and the settled messages are deleted in one
        call. This is what makes the consumer fast on SQLite, where every transaction costs a turn at
        the single write lock. When the batch transaction itself fails (the database went away, a
        concurrent delivery of the same event committed first), every message is processed again on
        its own with `handle()`. Handlers run one after the other here; batches run in parallel.
        """
        if self.sessionmaker is None or len(messages) < 2:
            return [await self.handle(m, acknowledge=acknowledge) for m in messages]
        outcomes: dict[int, Outcome] = {}
        decoded: list[tuple[int, _Route, Envelope, Event]] = []
        for index, message in enumerate(messages):
            try:
                envelope, event = decode(message, self.registry)
            except DecodeError:
                outcomes[index] = await self.handle(message, acknowledge=acknowledge)  # dead-letters it
                continue
            route = self._routes.get(envelope.type)
            if route is None:
                outcomes[index] = await self.handle(message, acknowledge=acknowledge)
                continue
            decoded.append((index, route, envelope, event))
        failures: dict[int, Exception] = {}
        try:
            # One transaction: the inbox check, each handler in a savepoint, the inbox rows. (On SQLite
            # the check takes the write lock too: `BEGIN IMMEDIATE`, whatever the first statement.)
            async with self._session() as session, session.begin():
                raw = await inline_sqlite3(session, _SEEN) if self._inline else None
                root = session.sync_session.get_transaction()
                seen = await self._seen(session, [item[2].id for item in decoded], raw)
                done: list[Envelope] = []
                taken: set[str] = set()
                observer = observe.get_observer()
                for index, route, envelope, event in decoded:
                    if envelope.id in seen or envelope.id in taken:
                        outcomes[index] = Outcome.DUPLICATE
                        continue
                    taken.add(envelope.id)
                    token = (
                        None
                        if observer is None
                        else observer.handling(self.name, self.queue, envelope, messages[index], route.name)
                    )
                    try:
                        if raw is not None and _savepoint(session, root, raw):
                            await self._call_in_raw_savepoint(
                                route, session, root, raw, messages[index], envelope, event
                            )
                        else:
                            async with session.begin_nested():
                                await self._call(route, session, messages[index], envelope, event)
                    except BaseException as exc:
                        if observer is not None:
                            observer.handled(token, exc)
                        if not isinstance(exc, Exception):
                            raise
                        failures[index] = exc
                        continue
                    if observer is not None:
                        observer.handled(token, None)
                    done.append(envelope)
                if done:
                    known = raw if raw is not None and _savepoint(session, root, raw) else None
                    await self._mark(session, [e.id for e in done], known)
        except Exception:
            log.warning("%s: batch transaction failed, processing its messages one by one", self.name, exc_info=True)
            for index, _route, _envelope, _event in decoded:
                outcomes[index] = await self.handle(messages[index], acknowledge=acknowledge)
            return [outcomes[i] for i in range(len(messages))]
        settled = []
        for index, _route, _envelope, _event in decoded:
            if index in failures:
                outcomes[index] = await self._fail(messages[index], failures[index], acknowledge)
                continue
            if index not in outcomes:
                outcomes[index] = Outcome.PROCESSED
            settled.append(messages[index])
            self._count(outcomes[index])
        if acknowledge and settled:
            try:
                await self._deletes.delete([m.receipt for m in settled])
            except TransportError:
                self.stats.transport_errors += 1  # redelivered later and acknowledged by the inbox
        return [outcomes[i] for i in range(len(messages))]

    async def _call(
        self, route: _Route, session: AsyncSession, message: IncomingMessage, envelope: Envelope, event: Event
    ) -> None:
        """One handler in the batch transaction, within the handler timeout; flushes its writes."""
        provided: dict[str, Any] = {"event": event, "envelope": envelope, "message": message}
        provided.update(self._session_dependencies(session, envelope))
        await self._bounded(self._handler_and_flush(route, session, provided))

    async def _bounded(self, work: Awaitable[T]) -> T:
        """`work` within the handler timeout: `HandlerTimeout` when it runs out."""
        if self.handler_timeout is None:
            # No deadline: `asyncio.timeout(None)` would arm nothing, at a micro-second per handler.
            return await work
        timeout = asyncio.timeout(self.handler_timeout)
        try:
            async with timeout:
                return await work
        except TimeoutError as exc:
            if timeout.expired():
                raise HandlerTimeout(f"handler ran longer than {self.handler_timeout} s") from exc
            raise

    async def _handler_and_flush(self, route: _Route, session: AsyncSession, provided: Mapping[str, Any]) -> None:
        await route.handler(**self._arguments(route, provided))
        if session.new or session.dirty or session.deleted:  # else nothing to flush: no greenlet crossing
            await session.flush()

    async def _run(self, route: _Route, message: IncomingMessage, envelope: Envelope, event: Event) -> bool:
        """Run the handler with its inbox transaction; True if the event had been processed already."""
        return await self._bounded(self._transaction(route, message, envelope, event))

    async def _transaction(self, route: _Route, message: IncomingMessage, envelope: Envelope, event: Event) -> bool:
        provided: dict[str, Any] = {"event": event, "envelope": envelope, "message": message}
        if self.sessionmaker is None:
            await route.handler(**self._arguments(route, provided))
            return False
        try:
            async with self._session() as session, session.begin():
                # The inbox row first: its primary key is the check. One statement instead of a read
                # and a write; a delivery already processed (or being processed by a concurrent
                # transaction, which PostgreSQL makes this insert wait for) fails it, and the whole
                # transaction rolls back before the handler runs.
                try:
                    await self._mark(session, [envelope.id])
                except IntegrityError as exc:
                    raise _Duplicate from exc
                provided.update(self._session_dependencies(session, envelope))
                await route.handler(**self._arguments(route, provided))
                if session.new or session.dirty or session.deleted:
                    await session.flush()  # the handler's own errors surface here, inside the timeout
        except _Duplicate:
            return True  # processed before, or by a concurrent delivery that committed first
        return False

    async def _call_in_raw_savepoint(
        self,
        route: _Route,
        session: AsyncSession,
        root: SessionTransaction | None,
        raw: sqlite3.Connection,
        message: IncomingMessage,
        envelope: Envelope,
        event: Event,
    ) -> None:
        """`_call` in a savepoint straight on the inline driver's `sqlite3` connection.

        The ORM's `begin_nested()` costs two greenlet crossings and its nested-transaction bookkeeping
        (identity map snapshots) per handler: most of the consumer's CPU per event in a batch. Here a
        handler that fails rolls back to the savepoint all the same, and the session forgets its ORM
        objects (`expunge_all`: what the failed handler added is not flushed later, and what it
        loaded is not trusted; those of the handlers before it are flushed already). A failed flush
        of the ORM rolls back the whole transaction instead of the savepoint: the batch then fails and
        its messages are processed one by one, each in a transaction of its own."""
        if run_inline(raw, "SAVEPOINT scte_handler", ()) is None:  # a savepoint takes no lock: never
            raise RuntimeError("SQLite refused the handler's savepoint")
        try:
            await self._call(route, session, message, envelope, event)
        except BaseException:
            if root is not None and root.is_active and raw.in_transaction:
                run_inline(raw, "ROLLBACK TO SAVEPOINT scte_handler", ())
                run_inline(raw, "RELEASE SAVEPOINT scte_handler", ())
                session.expunge_all()
            raise
        if not _savepoint(session, root, raw):
            raise RuntimeError("the batch transaction ended inside a handler")
        run_inline(raw, "RELEASE SAVEPOINT scte_handler", ())

    async def _seen(self, session: AsyncSession, ids: list[str], raw: sqlite3.Connection | None) -> set[str]:
        """Which of these event ids the inbox has (on the inline driver straight on `sqlite3` as
        `raw`, in the session's transaction: see `scte.bus.database.inline_sqlite3`)."""
        if not ids:
            return set()
        if raw is not None:
            sql = _SEEN_INLINE % ", ".join("?" * len(ids))
            rows = run_inline(raw, sql, (self.name, *ids))
            if rows is not None:
                return {row[0] for row in rows}
        return set((await session.scalars(_SEEN, {"consumer": self.name, "ids": ids})).all())

    async def _mark(self, session: AsyncSession, ids: list[str], raw: sqlite3.Connection | None = None) -> None:
        """The inbox rows of these event ids, in the session's transaction (`IntegrityError` when one
        is there already); `raw`, the transaction's `sqlite3` connection when the caller has it."""
        now = datetime.now(UTC)
        if raw is None and self._inline:
            raw = await inline_sqlite3(session, _INSERT_INBOX)
        if raw is not None:
            processed_at = _processed_at(session)(now)
            rows = [(self.name, event_id, processed_at) for event_id in ids]
            if run_inline(raw, _INSERT_INBOX_INLINE, rows, many=True) is not None:
                return
        await session.execute(_INSERT_INBOX, [{"consumer": self.name, "event_id": i, "processed_at": now} for i in ids])

    def _session_dependencies(self, session: AsyncSession, envelope: Envelope) -> dict[str, Any]:
        provided: dict[str, Any] = {"session": session}
        publisher = self.publisher
        if publisher is None:
            return provided

        async def publish(event: Event, *, topic: str) -> Envelope:
            return await publisher.publish(session, event, topic=topic, causation=envelope)

        async def schedule(
            event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
        ) -> Envelope:
            return await schedule_event(
                session,
                event,
                deliver_at=deliver_at,
                topic=topic,
                queue=queue,
                source=publisher.source,
                causation=envelope,
            )

        provided["publish"] = publish
        provided["schedule"] = schedule
        return provided

    def _arguments(self, route: _Route, provided: Mapping[str, Any]) -> dict[str, Any]:
        return {name: provided[name] if name in provided else self.dependencies[name] for name in route.parameters}

    async def _fail(self, message: IncomingMessage, exc: Exception, acknowledge: bool) -> Outcome:
        reason = "handler-timeout" if isinstance(exc, HandlerTimeout) else "handler-error"
        if message.receive_count >= self.max_receive_count:
            log.error(
                "%s: message %s failed %d times, dead-lettering: %r",
                self.name,
                message.message_id,
                message.receive_count,
                exc,
            )
            return await self._dead_letter(message, reason, exc, acknowledge)
        delay = self.retry.delay(message.receive_count, self.rng)
        log.warning(
            "%s: message %s failed (receive %d of %d), retry in %d s: %r",
            self.name,
            message.message_id,
            message.receive_count,
            self.max_receive_count,
            delay,
            exc,
        )
        try:
            await self.transport.change_visibility(self.queue, message.receipt, delay)
        except TransportError:
            self.stats.transport_errors += 1  # it comes back after its visibility timeout anyway
        self._count(Outcome.RETRY)
        return Outcome.RETRY

    def dead_letter_message(self, message: IncomingMessage, reason: str, exc: BaseException) -> OutgoingMessage:
        """The message as it goes to the dead-letter queue: body unchanged, the failure in one attribute."""
        return dead_letter_message(message, reason, exc, consumer=self.name, queue=self.queue, fifo=self.spec.fifo)

    async def _dead_letter(
        self, message: IncomingMessage, reason: str, exc: BaseException, acknowledge: bool
    ) -> Outcome:
        try:
            await self.transport.send(self.spec.dead_letter_queue, [self.dead_letter_message(message, reason, exc)])
        except TransportError:
            # Not recorded anywhere yet: leave the message where it is; it comes back after its visibility.
            self.stats.transport_errors += 1
            log.exception("%s: could not dead-letter message %s", self.name, message.message_id)
            self._count(Outcome.RETRY)
            return Outcome.RETRY
        if acknowledge:
            await self._delete(message)
        self._count(Outcome.DEAD_LETTERED)
        return Outcome.DEAD_LETTERED

    async def _delete(self, message: IncomingMessage) -> None:
        try:
            await self._deletes.delete([message.receipt])
        except TransportError:
            # Committed but not acknowledged: it is redelivered and the inbox acknowledges it then.
            self.stats.transport_errors += 1
            log.warning("%s: could not delete message %s", self.name, message.message_id)

    def _count(self, outcome: Outcome) -> None:
        stats = self.stats
        key = outcome._value_  # the member's value as stored: `.value` is an enum property, ten times dearer
        stats.by_outcome[key] = stats.by_outcome.get(key, 0) + 1
        if outcome is Outcome.PROCESSED:
            stats.processed += 1
        elif outcome is Outcome.DUPLICATE:
            stats.duplicates += 1
        elif outcome is Outcome.RETRY:
            stats.retried += 1
        elif outcome is Outcome.DEAD_LETTERED:
            stats.dead_lettered += 1
        else:
            stats.released += 1

    # -- a batch (tests, the harness, Lambda) ------------------------------------------------------

    async def handle_batch(self, messages: Sequence[IncomingMessage], *, acknowledge: bool = True) -> list[Outcome]:
        """Process a batch as the running consumer would: groups of a FIFO queue in order, one after the
        other within a group (after a failure, the rest of that group is released), all else at once
        within `concurrency`. Returns the outcomes in the order of `messages`."""
        outcomes: dict[int, Outcome] = {}
        slots = asyncio.Semaphore(self.concurrency)

        async def one(index: int) -> None:
            async with slots:
                outcomes[index] = await self.handle(messages[index], acknowledge=acknowledge)

        async def lane(indexes: list[int]) -> None:
            for position, index in enumerate(indexes):
                async with slots:
                    outcome = await self.handle(messages[index], acknowledge=acknowledge)
                outcomes[index] = outcome
                if not outcome.settled:
                    for rest in indexes[position + 1 :]:
                        outcomes[rest] = await self._release(messages[rest]) if acknowledge else Outcome.RELEASED
                    return

        async with asyncio.TaskGroup() as group:
            if self.spec.fifo:
                lanes: dict[str, list[int]] = {}
                for index, message in enumerate(messages):
                    lanes.setdefault(message.group_id or "", []).append(index)
                for indexes in lanes.values():
                    group.create_task(lane(indexes))
            elif self.sessionmaker is not None:
                outcomes.update(enumerate(await self.handle_many(messages, acknowledge=acknowledge)))
            else:
                for index in range(len(messages)):
                    group.create_task(one(index))
        return [outcomes[i] for i in range(len(messages))]

    async def run_once(self, *, wait_seconds: int = 0, max_messages: int = 10) -> list[Outcome]:
        """Receive one batch and process it to the end; for tests and the harness."""
        messages = await self.transport.receive(
            self.queue, max_messages=max_messages, wait_seconds=wait_seconds, visibility_timeout=None
        )
        self.stats.received += len(messages)
        return await self.handle_batch(messages)

    async def _release(self, message: IncomingMessage) -> Outcome:
        try:
            await self.transport.change_visibility(self.queue, message.receipt, 0)
        except TransportError:
            self.stats.transport_errors += 1
        self._count(Outcome.RELEASED)
        return Outcome.RELEASED

    # -- running -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start polling in the background; `stop()` ends it gracefully."""
        if self._running:
            return
        self._running = True
        self._stopping.clear()
        self._stopped.clear()
        self._pollers = [asyncio.create_task(self._poll(), name=f"{self.name}-poll-{i}") for i in range(self.pollers)]
        self._heartbeat = asyncio.create_task(self._beat(), name=f"{self.name}-heartbeat")

    async def run(self) -> None:
        """Run until `stop()` is called (or the task is cancelled, which stops gracefully too)."""
        await self.start()
        try:
            await self._stopped.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop receiving, let handlers in hand finish for up to `grace_seconds`, release the rest.

        Handlers still running after the grace period are cancelled (their transactions roll back) and
        their messages released; messages received but not started are released at once.
        """
        if not self._running:
            return
        self._stopping.set()
        for poller in self._pollers:
            poller.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        waiting = [lease for lane in self._lanes.values() for lease in lane if not lease.started]
        for lease in waiting:
            lease.done = True
        if waiting:
            await asyncio.gather(*(self._release(lease.message) for lease in waiting))
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        self._running = False
        self._stopped.set()

    @property
    def in_hand(self) -> int:
        return len(self._leases)

    async def _poll(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            wanted = await self._slots.take(10)
            try:
                messages = await self.transport.receive(self.queue, max_messages=wanted, wait_seconds=self.wait_seconds)
            except TransportError as exc:
                self._slots.give(wanted)
                failures += 1
                self.stats.transport_errors += 1
                pause = min(5.0, 0.1 * 2**failures) * (0.5 + self.rng.random() / 2)
                log.warning("%s: receive failed (%s), again in %.1f s", self.name, exc, pause)
                await asyncio.sleep(pause)
                continue
            except BaseException:
                self._slots.give(wanted)
                raise
            failures = 0
            self._slots.give(wanted - len(messages))
            self.stats.received += len(messages)
            now = asyncio.get_running_loop().time()
            leases = [_Lease(message, now + self.visibility_timeout) for message in messages]
            if self.spec.fifo or self.sessionmaker is None or self.transaction_per_event:
                for lease in leases:
                    self._dispatch(lease)
            elif leases:
                for lease in leases:
                    self._leases[lease.message.receipt] = lease
                self._spawn(self._many(leases))
            if leases:
                # Let the handlers start before the next receive is prepared (with aiobotocore that
                # is a millisecond of CPU before its first await): latency first, polling second.
                await asyncio.sleep(0)

    def _dispatch(self, lease: _Lease) -> None:
        self._leases[lease.message.receipt] = lease
        group = lease.message.group_id
        if self.spec.fifo and group is not None:
            lane = self._lanes.get(group)
            if lane is not None:
                lane.append(lease)  # its lane's task takes it in order
                return
            self._lanes[group] = deque([lease])
            self._spawn(self._lane(group))
        else:
            self._spawn(self._one(lease))

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, lease: _Lease) -> None:
        lease.started = True
        try:
            await self._guarded(lease)
        finally:
            self._forget(lease)

    async def _many(self, leases: list[_Lease]) -> None:
        for lease in leases:
            lease.started = True
        try:
            await self.handle_many([lease.message for lease in leases])
        except asyncio.CancelledError:
            if self._stopping.is_set():
                await asyncio.shield(asyncio.gather(*(self._release(lease.message) for lease in leases)))
            raise
        except Exception:  # a bug in the runtime itself must not kill the consumer
            log.exception("%s: unexpected error on a batch of %d", self.name, len(leases))
        finally:
            for lease in leases:
                lease.done = True
                self._forget(lease)

    async def _lane(self, group: str) -> None:
        lane = self._lanes[group]
        try:
            while lane:
                lease = lane[0]
                if lease.done:
                    lane.popleft()
                    self._forget(lease)
                    continue
                lease.started = True
                outcome = await self._guarded(lease)
                lane.popleft()
                self._forget(lease)
                if not outcome.settled:
                    # Order within a group: nothing after a failed message may run before it.
                    while lane:
                        rest = lane.popleft()
                        if not rest.done:
                            rest.done = True
                            await self._release(rest.message)
                        self._forget(rest)
        finally:
            for lease in lane:
                self._forget(lease)
            self._lanes.pop(group, None)

    async def _guarded(self, lease: _Lease) -> Outcome:
        try:
            return await self.handle(lease.message)
        except asyncio.CancelledError:
            if self._stopping.is_set():
                lease.done = True
                await asyncio.shield(self._release(lease.message))
            raise
        except Exception:  # a bug in the runtime itself must not kill the consumer
            log.exception("%s: unexpected error on message %s", self.name, lease.message.message_id)
            return Outcome.RETRY
        finally:
            lease.done = True

    def _forget(self, lease: _Lease) -> None:
        if self._leases.pop(lease.message.receipt, None) is not None:
            self._slots.give(1)

    async def _beat(self) -> None:
        """Extend the visibility of messages still in hand at half their visibility timeout."""
        timeout = self.visibility_timeout
        interval = max(0.2, timeout / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for lease in list(self._leases.values()):
                if lease.done or not lease.extendable or lease.deadline - now > timeout / 2:
                    continue
                try:
                    await self.transport.change_visibility(self.queue, lease.message.receipt, timeout)
                except TransportError as exc:
                    if lease.settled():  # meanwhile (deleted, so nothing to extend): not an error
                        continue
                    self.stats.transport_errors += 1
                    if exc.code in _NOT_EXTENDABLE:
                        # The broker will not extend this reservation again (it ended, or it reached SQS's
                        # 12 hours): asking every interval would only repeat the refusal.
                        lease.extendable = False
                        log.warning(
                            "%s: the visibility of message %s can no longer be extended (%s); it may be"
                            " delivered again while its handler runs (the inbox applies its effect once)",
                            self.name,
                            lease.message.message_id,
                            exc,
                        )
                    continue
                lease.deadline = loop.time() + timeout
                self.stats.heartbeats += 1


async def run_consumers(consumers: Iterable[Consumer], *, grace_seconds: float = 30.0) -> None:
    """Run consumers until SIGTERM or SIGINT, then stop them gracefully (a process's entry point)."""
    running = list(consumers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for consumer in running:
            await consumer.start()
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await asyncio.gather(*(c.stop(grace_seconds) for c in running))
