"""A test harness for service authors: handlers against the real broker engine, with a virtual clock.

    async with BusHarness(TOPOLOGY, registry) as bus:
        bus.consumer("members", {CertificationAwarded: on_awarded})
        await bus.publish(CertificationAwarded(member_id="m1", program="BPI"), topic="certification")
        await bus.run_until_idle()
        assert bus.published(MemberStatusChanged) == [MemberStatusChanged(member_id="m1", status="certified")]
        bus.advance(3600)          # retries and scheduled deliveries become due
        await bus.run_until_idle()
        assert await bus.dead_letters("members") == []

`BusHarness.of(service)` runs a declared `scte.bus.service.Service` (its topology, tables, handlers).

Everything is real except time and the network: the `scte.queue` engine on a temporary file (through
the in-process transport), SQLite databases for the service (outbox, inbox, schedule and the
service's own tables), the consumer runtime. Nothing runs in the background: `run_until_idle()`
moves scheduled rows, relays the outbox and runs consumers until nothing is left to do now, so a
test steps through retries and schedules deterministically with `advance()`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import async_sessionmaker

from scte.bus.consumer import DEAD_LETTER_ATTRIBUTE, Consumer, Handlers, Outcome, RetryPolicy
from scte.bus.contracts import Event, EventRegistry
from scte.bus.contracts import registry as default_registry
from scte.bus.database import sqlite_engine
from scte.bus.envelope import Envelope, decode
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.scheduler import SchedulerLoop, schedule
from scte.bus.storage import metadata as bus_metadata
from scte.bus.topology import Topology
from scte.bus.transport import IncomingMessage, OutgoingMessage
from scte.bus.transports.inprocess import InProcessTransport
from scte.queue.clock import ManualClock
from scte.queue.engine import Engine, EngineConfig

if TYPE_CHECKING:
    from scte.bus.service import Service

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Sent:
    """A message the code under test put on the broker (through the outbox or a dead letter)."""

    destination: str  # logical topic or queue name
    to_topic: bool
    message: OutgoingMessage


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue and the failure recorded with it."""

    message: IncomingMessage
    reason: str
    error_type: str
    error: str
    record: Mapping[str, Any]


class RecordingTransport(InProcessTransport):
    """The in-process transport, remembering what was published and sent."""

    def __init__(self, engine: Engine, prefix: str = "", *, topology: Topology | None = None) -> None:
        super().__init__(engine, prefix, topology=topology)
        self.sent: list[Sent] = []

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        await super().publish(topic, messages)
        self.sent.extend(Sent(topic, True, m) for m in messages)

    async def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        await super().send(queue, messages)
        self.sent.extend(Sent(queue, False, m) for m in messages)


class BusHarness:
    """Handlers, the outbox, the inbox and the scheduler on the real engine, with a `ManualClock`."""

    def __init__(
        self,
        topology: Topology,
        registry: EventRegistry | None = None,
        *,
        source: str = "test",
        directory: str | Path | None = None,
        metadata: MetaData | Sequence[MetaData] = (),
        dependencies: Mapping[str, object] | None = None,
        retry: RetryPolicy | None = None,
        handler_timeout: float | None = None,
    ) -> None:
        self.topology = topology
        self.registry = registry or default_registry
        self.source = source
        self._tmp = tempfile.TemporaryDirectory(prefix="scte-bus-") if directory is None else None
        self.directory = Path(self._tmp.name if self._tmp else str(directory))
        self._metadata = [metadata] if isinstance(metadata, MetaData) else list(metadata)
        self.dependencies = dict(dependencies or {})
        self.retry = retry or RetryPolicy(jitter=0.0)
        self.handler_timeout = handler_timeout
        self.clock = ManualClock(start=datetime.now(UTC).timestamp())
        self.engine = Engine(EngineConfig(path=self.directory / "broker.db", clock=self.clock))
        self.transport = RecordingTransport(self.engine, topology=topology)
        self.db = sqlite_engine(self.directory / "service.db")
        self.sessionmaker = async_sessionmaker(self.db, expire_on_commit=False)
        self.relay = OutboxRelay(self.sessionmaker, self.transport)
        self.publisher = Publisher(source, topology)
        self.scheduler = SchedulerLoop(self.sessionmaker, transport=self.transport, clock=self.clock.now)
        self.consumers: dict[str, Consumer] = {}

    @classmethod
    def of(cls, service: Service, **options: Any) -> BusHarness:
        """A harness running `service` as declared: its topology, registry, tables, dependencies and a
        consumer of its queue with its handlers (`options` as for the constructor, over the service's)."""
        options.setdefault("source", service.name)
        options.setdefault("metadata", service.metadata)
        options.setdefault("dependencies", service.dependencies)
        options.setdefault("handler_timeout", service.handler_timeout)
        if service.retry is not None:
            options.setdefault("retry", service.retry)
        harness = cls(service.topology, service.registry, **options)
        queue = service.queue
        if queue is not None and service.handlers:
            harness.consumer(queue.name, service.handlers, name=service.name)
        return harness

    async def start(self) -> BusHarness:
        await self.engine.start()
        await self.transport.provision(self.topology)
        async with self.db.begin() as connection:
            for metadata in (bus_metadata, *self._metadata):
                await connection.run_sync(metadata.create_all)
        return self

    async def close(self) -> None:
        await self.db.dispose()
        await self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> BusHarness:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- wiring ------------------------------------------------------------------------------------

    def consumer(
        self,
        queue: str,
        handlers: Handlers,
        *,
        name: str | None = None,
        dependencies: Mapping[str, object] | None = None,
        **options: Any,
    ) -> Consumer:
        """Add a consumer of `queue` run by `run_until_idle()`; the harness's dependencies are given to
        its handlers along with `dependencies`."""
        options.setdefault("retry", self.retry)
        options.setdefault("handler_timeout", self.handler_timeout)
        consumer = Consumer(
            self.transport,
            self.topology,
            self.registry,
            queue=queue,
            handlers=handlers,
            sessionmaker=self.sessionmaker,
            publisher=self.publisher,
            dependencies={**self.dependencies, **(dependencies or {})},
            name=name,
            **options,
        )
        self.consumers[consumer.name] = consumer
        return consumer

    # -- acting ------------------------------------------------------------------------------------

    async def publish(self, event: Event, *, topic: str) -> Envelope:
        """Publish as a service does: an outbox row in a committed transaction (relayed on the next run)."""
        async with self.sessionmaker() as session, session.begin():
            return await self.publisher.publish(session, event, topic=topic)

    async def schedule(
        self, event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
    ) -> Envelope:
        async with self.sessionmaker() as session, session.begin():
            return await schedule(session, event, deliver_at=deliver_at, topic=topic, queue=queue, source=self.source)

    async def send_raw(
        self, queue: str, body: str, attributes: Mapping[str, str] | None = None, *, group_id: str | None = None
    ) -> None:
        """Put any message on a queue, bypassing the envelope (bad-message tests)."""
        fifo = self.topology.queue(queue).fifo
        await self.transport.send(
            queue,
            [
                OutgoingMessage(
                    body=body,
                    attributes=dict(attributes or {}),
                    group_id=(group_id or "raw") if fifo else None,
                    deduplication_id=str(len(self.transport.sent)) if fifo else None,
                )
            ],
        )

    def advance(self, seconds: float) -> None:
        """Move the virtual clock: visibility timeouts and backoffs expire, schedules become due."""
        self.clock.advance(seconds)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def run_until_idle(self, *, max_rounds: int = 10_000) -> list[Outcome]:
        """Move due schedules, relay the outbox and run every consumer until nothing is left to do at
        the current virtual time. Returns the outcomes of the messages handled, in order."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            busy = await self.scheduler.run_once() > 0
            busy = await self.relay.run_once() > 0 or busy
            for consumer in list(self.consumers.values()):
                handled = await consumer.run_once(wait_seconds=0)
                outcomes.extend(handled)
                busy = busy or bool(handled)
            if not busy:
                return outcomes
        raise RuntimeError(f"not idle after {max_rounds} rounds: a handler keeps producing work")

    # -- asserting ---------------------------------------------------------------------------------

    def published(self, event_type: type[E] | str | None = None) -> list[Any]:
        """The events published to topics (and sent to queues) so far, oldest first, decoded; of one
        type when given. Dead letters are not included."""
        wanted = event_type if isinstance(event_type, str) or event_type is None else event_type.event_type
        events: list[Any] = []
        for envelope, decoded in self.published_envelopes():
            if wanted is None or envelope.type == wanted:
                events.append(decoded)
        return events

    def published_envelopes(self) -> list[tuple[Envelope, Event]]:
        out: list[tuple[Envelope, Event]] = []
        for sent in self.transport.sent:
            if DEAD_LETTER_ATTRIBUTE in sent.message.attributes:
                continue
            incoming = IncomingMessage(
                queue=sent.destination,
                message_id="",
                receipt="",
                body=sent.message.body,
                attributes=sent.message.attributes,
                receive_count=0,
                sent_timestamp_ms=0,
                group_id=sent.message.group_id,
            )
            try:
                out.append(decode(incoming, self.registry))
            except Exception:
                continue  # raw messages of bad-message tests
        return out

    async def dead_letters(self, queue: str) -> list[DeadLetter]:
        """What the dead-letter queue of `queue` holds (looked at, left in place)."""
        dlq = self.topology.queue(queue).dead_letter_queue
        held: list[IncomingMessage] = []
        while True:  # hide each one while collecting, so every message is seen once, then release all
            batch = await self.transport.receive(dlq, max_messages=10, wait_seconds=0, visibility_timeout=3600)
            if not batch:
                break
            held.extend(batch)
        for message in held:
            await self.transport.change_visibility(dlq, message.receipt, 0)
        letters = []
        for message in sorted(held, key=lambda m: m.sent_timestamp_ms):
            record = json.loads(message.attributes.get(DEAD_LETTER_ATTRIBUTE, "{}"))
            letters.append(
                DeadLetter(
                    message=message,
                    reason=str(record.get("reason", "")),
                    error_type=str(record.get("error_type", "")),
                    error=str(record.get("error", "")),
                    record=record,
                )
            )
        return letters
