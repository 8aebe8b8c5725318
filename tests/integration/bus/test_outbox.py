"""The transactional outbox on real databases (SQLite and PostgreSQL) and a real broker engine.

PostgreSQL: 127.0.0.1:5432, database `test` (override with SCTE_TEST_POSTGRES_URL); each test gets
its own schema, dropped afterwards. Fails when no server answers (skips only with SCTE_TEST_SKIP_POSTGRES=1).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from scte.bus.contracts import Event, EventRegistry
from scte.bus.database import sqlite_engine
from scte.bus.envelope import decode
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.storage import bus_outbox, include_in
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import IncomingMessage, OutgoingMessage, Transport, TransportError
from scte.bus.transports.inprocess import InProcessTransport
from scte.kit.testing import POSTGRES_URL, postgres_unreachable, skip_postgres_on_purpose
from scte.queue.engine import Engine, EngineConfig

contracts = EventRegistry()


@contracts.register
class CertificationAwarded(Event):
    event_type: ClassVar[str] = "certification.awarded.v1"
    member_id: str
    program: str
    seq: int = 0

    def subject(self) -> str | None:
        return self.member_id


TOPOLOGY = Topology(
    topics=(TopicSpec("certification", fifo=True), TopicSpec("activity")),
    queues=(
        QueueSpec("members", fifo=True, subscriptions=(Subscription("certification"),)),
        QueueSpec("reports", subscriptions=(Subscription("activity"),)),
    ),
)

business = MetaData()
certifications = Table(
    "certifications",
    business,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(64), nullable=False),
    Column("program", String(16), nullable=False),
)
include_in(business)


@dataclass
class Service:
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    engine: Engine
    transport: InProcessTransport
    publisher: Publisher


async def _postgres_engine() -> tuple[AsyncEngine, str]:
    schema = f"bus_test_{uuid.uuid4().hex[:12]}"
    skip_postgres_on_purpose()
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:  # no server answering: a failure, unless SCTE_TEST_SKIP_POSTGRES=1 (above)
        postgres_unreachable(exc)
    finally:
        await admin.dispose()
    return create_async_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}), schema


async def _drop_schema(schema: str) -> None:
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", "sqlite-inline", "postgresql"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    schema = None
    if request.param == "sqlite":  # plain aiosqlite, as a service may configure it
        db = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    elif request.param == "sqlite-inline":
        db = sqlite_engine(tmp_path / "service.db")
    else:
        db, schema = await _postgres_engine()
    async with db.begin() as conn:
        await conn.run_sync(business.create_all)
    engine = await Engine(EngineConfig(path=tmp_path / "broker.db")).start()
    transport = InProcessTransport(engine, "svc-")
    await transport.provision(TOPOLOGY)
    try:
        yield Service(
            db, async_sessionmaker(db, expire_on_commit=False), engine, transport, Publisher("certification", TOPOLOGY)
        )
    finally:
        await engine.close()
        await db.dispose()
        if schema is not None:
            await _drop_schema(schema)


async def award(
    service: Service, member: str, program: str = "BPI", seq: int = 0, *, publisher: Publisher | None = None
) -> None:
    """A use case: a business row and its event in one transaction."""
    async with service.sessions() as session, session.begin():
        await session.execute(insert(certifications).values(member_id=member, program=program))
        await (publisher or service.publisher).publish(
            session, CertificationAwarded(member_id=member, program=program, seq=seq), topic="certification"
        )


async def receive_all(transport: Transport, queue: str, expected: int, timeout: float = 10) -> list[IncomingMessage]:
    got: list[IncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await transport.receive(queue, wait_seconds=1)
        got.extend(batch)
        if batch:
            await transport.delete(queue, [m.receipt for m in batch])
    got.extend(await transport.receive(queue, wait_seconds=0))
    return got


async def count(db: AsyncEngine, table: Table, *where: object) -> int:
    async with db.connect() as conn:
        return len((await conn.execute(select(table).where(*where))).all())  # type: ignore[arg-type]


class FlakyTransport:
    """Delegates to a real transport; `down` makes publish fail as an unreachable broker does;
    `hang_after_publish` makes it hang once the broker has acknowledged (to kill the relay there)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.down = False
        self.failing_topics: set[str] = set()
        self.hang_after_publish = False
        self.published = asyncio.Event()
        self.calls = 0

    async def provision(self, topology: Topology) -> None:
        await self.inner.provision(topology)

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.calls += 1
        if self.down or topic in self.failing_topics:
            raise TransportError("publish: broker unreachable: connection refused")
        await self.inner.publish(topic, messages)
        if self.hang_after_publish:
            self.published.set()
            await asyncio.Event().wait()

    async def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        await self.inner.send(queue, messages)

    async def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> list[IncomingMessage]:
        return await self.inner.receive(
            queue, max_messages=max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )

    async def delete(self, queue: str, receipts: Sequence[str]) -> None:
        await self.inner.delete(queue, receipts)

    async def change_visibility(self, queue: str, receipt: str, seconds: int) -> None:
        await self.inner.change_visibility(queue, receipt, seconds)

    async def close(self) -> None:
        await self.inner.close()


# -- the transaction ----------------------------------------------------------------------------------------


async def test_event_is_written_in_the_business_transaction(service: Service) -> None:
    await award(service, "m1")
    assert await count(service.db, certifications) == 1
    assert await count(service.db, bus_outbox, bus_outbox.c.sent_at.is_(None)) == 1

    with pytest.raises(RuntimeError):
        async with service.sessions() as session, session.begin():
            await session.execute(insert(certifications).values(member_id="m2", program="BPT"))
            await service.publisher.publish(
                session, CertificationAwarded(member_id="m2", program="BPT"), topic="certification"
            )
            raise RuntimeError("the use case fails after publishing")
    assert await count(service.db, certifications) == 1  # neither the row ...
    assert await count(service.db, bus_outbox) == 1  # ... nor the event


async def test_publish_never_calls_the_broker(service: Service) -> None:
    flaky = FlakyTransport(service.transport)
    flaky.down = True
    relay = OutboxRelay(service.db, flaky)
    publisher = Publisher("certification", TOPOLOGY, relay=relay)
    await award(service, "m1", publisher=publisher)
    assert flaky.calls == 0
    with pytest.raises(KeyError):
        async with service.sessions() as session, session.begin():
            await publisher.publish(session, CertificationAwarded(member_id="m", program="x"), topic="nope")


# -- the relay ----------------------------------------------------------------------------------------------


async def test_relay_delivers_in_order_per_subject(service: Service) -> None:
    sequence = [("m1", 0), ("m2", 0), ("m1", 1), ("m3", 0), ("m1", 2), ("m2", 1), ("m3", 1), ("m2", 2)]
    for member, seq in sequence:
        await award(service, member, seq=seq)
    relay = OutboxRelay(service.db, service.transport, batch_size=3)  # several rounds
    delivered = 0
    while (n := await relay.run_once()) > 0:
        delivered += n
    assert delivered == len(sequence)
    assert await relay.pending() == 0

    got = await receive_all(service.transport, "members", len(sequence))
    assert len(got) == len(sequence)
    for member in ("m1", "m2", "m3"):
        events = [decode(m, contracts)[1] for m in got if m.group_id == member]
        expected = [seq for who, seq in sequence if who == member]
        assert [e.seq for e in events if isinstance(e, CertificationAwarded)] == expected
    envelope, _event = decode(got[0], contracts)
    assert envelope.source == "certification"
    assert envelope.correlation_id == envelope.id


async def test_broker_down_then_back(service: Service) -> None:
    flaky = FlakyTransport(service.transport)
    flaky.down = True
    relay = OutboxRelay(service.db, flaky, min_backoff=0.05, max_backoff=0.2)
    await award(service, "m1", seq=0)  # the request commits although the broker is down
    await award(service, "m1", seq=1)
    await award(service, "m2", seq=0)
    assert await relay.run_once() == 0
    assert await relay.pending() == 3
    async with service.db.connect() as conn:
        rows = (await conn.execute(select(bus_outbox).order_by(bus_outbox.c.id))).mappings().all()
    assert [r["attempts"] for r in rows] == [1, 1, 1]  # one batch, failed as a whole
    assert all("unreachable" in r["last_error"] and r["next_attempt_at"] is not None for r in rows)

    flaky.down = False
    deadline = asyncio.get_running_loop().time() + 5
    while await relay.pending() and asyncio.get_running_loop().time() < deadline:
        await relay.run_once()
        await asyncio.sleep(0.05)
    assert await relay.pending() == 0
    got = await receive_all(service.transport, "members", 3)
    m1 = [decode(m, contracts)[1] for m in got if m.group_id == "m1"]
    assert [e.seq for e in m1 if isinstance(e, CertificationAwarded)] == [0, 1]
    assert len(got) == 3


async def _relay_with_a_failing_row(service: Service) -> OutboxRelay:
    """A relay whose transport fails topic `activity`, and three rows: m1 to `activity` (fails), m1 to
    another topic (must wait behind it, same subject), m2 (flows)."""
    flaky = FlakyTransport(service.transport)
    flaky.failing_topics = {"activity"}
    relay = OutboxRelay(service.db, flaky, min_backoff=5, max_backoff=5)
    async with service.sessions() as session, session.begin():
        await service.publisher.publish(session, CertificationAwarded(member_id="m1", program="A"), topic="activity")
    await award(service, "m1", seq=1)
    await award(service, "m2", seq=0)
    return relay


async def test_a_failing_subject_waits_while_others_flow(service: Service) -> None:
    relay = await _relay_with_a_failing_row(service)
    assert await relay.run_once() == 0  # the first row fails
    assert await relay.run_once() == 1  # m1 waits out its backoff; m2 flows
    got = await receive_all(service.transport, "members", 1)
    assert [m.group_id for m in got] == ["m2"]
    assert await relay.pending() == 2


async def test_relay_killed_between_publish_and_mark_delivers_again(service: Service) -> None:
    flaky = FlakyTransport(service.transport)
    flaky.hang_after_publish = True
    async with service.sessions() as session, session.begin():
        await service.publisher.publish(session, CertificationAwarded(member_id="m1", program="BDS"), topic="activity")
    first = OutboxRelay(service.db, flaky)
    first.start()
    await asyncio.wait_for(flaky.published.wait(), 5)
    await first.stop(timeout=0.1)  # killed: the broker has the event, the outbox does not know
    assert await first.pending() == 1

    flaky.hang_after_publish = False
    second = OutboxRelay(service.db, flaky)
    assert await second.run_once() == 1
    assert await second.pending() == 0
    got = await receive_all(service.transport, "reports", 2)
    assert len(got) == 2  # at least once: delivered twice, never lost
    assert len({m.attributes["ce-id"] for m in got}) == 1  # the same event id: the inbox drops the second


async def test_background_relay_is_woken_by_the_commit(service: Service) -> None:
    relay = OutboxRelay(service.db, service.transport, poll_interval=30)
    publisher = Publisher("certification", TOPOLOGY, relay=relay)
    relay.start()
    try:
        await asyncio.sleep(0.2)  # the relay's first round found nothing; it now sleeps for 30 s
        started = asyncio.get_running_loop().time()
        await award(service, "m7", publisher=publisher)
        got = await receive_all(service.transport, "members", 1, timeout=5)
        assert len(got) == 1
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await relay.stop()
    assert not relay.running


async def test_background_relay_marks_a_round_with_the_next_rounds_read(service: Service) -> None:
    """On SQLite the background relay writes what a round published as sent in the next round's
    transaction (or at stop): never published twice meanwhile, and nothing left owed after stop."""
    if service.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's relay marks within the round, under its advisory lock")
    relay = OutboxRelay(service.db, service.transport, poll_interval=30)
    publisher = Publisher("certification", TOPOLOGY, relay=relay)
    relay.start()
    try:
        await award(service, "m1", publisher=publisher)
        assert len(await receive_all(service.transport, "members", 1, timeout=5)) == 1
        assert await relay.pending() == 1  # published; its mark rides with the next round
        await award(service, "m2", publisher=publisher)
        got = await receive_all(service.transport, "members", 1, timeout=5)
        assert [m.group_id for m in got] == ["m2"]  # m1 was not read again
        assert await relay.pending() == 1  # m1 marked with the read that found m2
    finally:
        await relay.stop()
    assert await relay.pending() == 0  # stop wrote the marks owed
    assert await receive_all(service.transport, "members", 1, timeout=0.5) == []


async def test_background_rounds_hold_a_failing_subject_while_others_flow(service: Service) -> None:
    """The SQLite background relay's rounds (their read and marks straight on sqlite3 with the inline
    driver): a failed row's subject waits out its backoff, other subjects flow, marks ride with the
    next round's read."""
    if service.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's relay rounds are run_once")
    relay = await _relay_with_a_failing_row(service)
    unmarked: list[int] = []
    assert await relay._round(unmarked) == 0  # the first row fails, recorded at once
    assert unmarked == []
    assert await relay._round(unmarked) == 1  # m1 waits out its backoff; m2 flows
    assert len(unmarked) == 1 and await relay.pending() == 3  # m2 published, its mark owed
    assert await relay._round(unmarked) == 0  # marks m2 with the read that finds nothing due
    assert unmarked == []
    assert await relay.pending() == 2
    got = await receive_all(service.transport, "members", 1)
    assert [m.group_id for m in got] == ["m2"]
    async with service.db.connect() as conn:
        rows = (await conn.execute(select(bus_outbox).order_by(bus_outbox.c.id))).mappings().all()
    assert [r["attempts"] for r in rows] == [1, 0, 0]
    assert rows[2]["sent_at"] is not None and rows[2]["sent_at"].tzinfo is not None


async def test_sent_rows_are_purged(service: Service) -> None:
    await award(service, "m1")
    relay = OutboxRelay(service.db, service.transport)
    assert await relay.run_once() == 1
    assert await relay.purge_sent(timedelta(hours=1)) == 0
    assert await relay.purge_sent(timedelta(seconds=-1)) == 1
    assert await count(service.db, bus_outbox) == 0
