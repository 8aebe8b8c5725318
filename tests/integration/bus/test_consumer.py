"""The consumer runtime on the real engine (in-process transport) and SQLite, through `BusHarness`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import ClassVar

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry

from scte.bus.consumer import Outcome, RetryPolicy
from scte.bus.contracts import Event, EventRegistry
from scte.bus.envelope import Envelope, encode
from scte.bus.storage import bus_inbox, bus_schedule
from scte.bus.testing import BusHarness
from scte.bus.topology import REDRIVE_MARGIN, QueueSpec, Subscription, TopicSpec, Topology

contracts = EventRegistry()


@contracts.register
class ExamPassed(Event):
    event_type: ClassVar[str] = "learning.exam_passed.v1"
    member_id: str
    exam: str

    def subject(self) -> str | None:
        return self.member_id


@contracts.register
class CertificationAwarded(Event):
    event_type: ClassVar[str] = "certification.awarded.v1"
    member_id: str
    program: str

    def subject(self) -> str | None:
        return self.member_id


@contracts.register
class ReminderDue(Event):
    event_type: ClassVar[str] = "certification.reminder_due.v1"
    member_id: str


service = MetaData()
effects = Table(
    "effects",
    service,
    Column("event_id", String, primary_key=True),
    Column("count", Integer, nullable=False),
)

TOPOLOGY = Topology(
    topics=(TopicSpec("learning"), TopicSpec("certification"), TopicSpec("learning-ordered", fifo=True)),
    queues=(
        QueueSpec("certification", subscriptions=(Subscription("learning"),), max_receive_count=3),
        QueueSpec("members", subscriptions=(Subscription("certification"),)),
        QueueSpec("ordered", subscriptions=(Subscription("learning-ordered"),), fifo=True, max_receive_count=3),
    ),
)


async def count_effect(session: AsyncSession, envelope: Envelope) -> None:
    row = await session.scalar(select(effects.c.count).where(effects.c.event_id == envelope.id))
    if row is None:
        await session.execute(effects.insert().values(event_id=envelope.id, count=1))
    else:
        await session.execute(effects.update().where(effects.c.event_id == envelope.id).values(count=row + 1))


async def effect_counts(bus: BusHarness) -> dict[str, int]:
    async with bus.sessionmaker() as session:
        return {
            str(r[0]): int(r[1]) for r in (await session.execute(select(effects.c.event_id, effects.c.count))).all()
        }


@pytest.fixture
async def bus() -> AsyncIterator[BusHarness]:
    async with BusHarness(TOPOLOGY, contracts, source="learning", metadata=service) as harness:
        yield harness


async def test_handler_effects_and_published_events_commit_together(bus: BusHarness) -> None:
    async def on_passed(event: ExamPassed, session: AsyncSession, envelope: Envelope, publish) -> None:  # type: ignore[no-untyped-def]
        await count_effect(session, envelope)
        await publish(CertificationAwarded(member_id=event.member_id, program="BPI"), topic="certification")

    bus.consumer("certification", {ExamPassed: on_passed})
    sent = await bus.publish(ExamPassed(member_id="m1", exam="BPI-1"), topic="learning")
    outcomes = await bus.run_until_idle()

    assert outcomes == [Outcome.PROCESSED]
    assert await effect_counts(bus) == {sent.id: 1}
    assert bus.published(CertificationAwarded) == [CertificationAwarded(member_id="m1", program="BPI")]
    awarded = next(env for env, _ in bus.published_envelopes() if env.type == CertificationAwarded.event_type)
    assert awarded.causation_id == sent.id
    assert awarded.correlation_id == sent.correlation_id
    async with bus.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(bus_inbox)) == 1


async def test_a_redelivered_event_is_acknowledged_without_running_the_handler_again(bus: BusHarness) -> None:
    calls: list[str] = []

    async def on_passed(event: ExamPassed, session: AsyncSession, envelope: Envelope) -> None:
        calls.append(envelope.id)
        await count_effect(session, envelope)

    bus.consumer("certification", {ExamPassed: on_passed})
    _envelope, message = encode(ExamPassed(member_id="m1", exam="x"), source="test")
    await bus.transport.send("certification", [message, message])  # the same event twice (at least once)
    outcomes = await bus.run_until_idle()

    assert sorted(o.value for o in outcomes) == ["duplicate", "processed"]
    assert len(calls) == 1
    assert list((await effect_counts(bus)).values()) == [1]


async def test_one_message_at_a_time_the_inbox_row_is_the_check(bus: BusHarness) -> None:
    """`handle()` (one message) writes the inbox row first and lets its primary key find duplicates:
    a failing handler rolls the row back with its effects, so the retry runs the handler again; after
    a success the same event is a duplicate and the handler is not called."""
    calls: list[str] = []

    async def on_passed(event: ExamPassed, session: AsyncSession, envelope: Envelope) -> None:
        calls.append(envelope.id)
        await count_effect(session, envelope)
        if len(calls) == 1:
            raise RuntimeError("the first attempt fails after writing its effect")

    consumer = bus.consumer("certification", {ExamPassed: on_passed})
    envelope, message = encode(ExamPassed(member_id="m1", exam="x"), source="test")
    await bus.transport.send("certification", [message, message, message])
    received = await bus.transport.receive("certification", max_messages=10, wait_seconds=0)
    assert len(received) == 3

    assert [await consumer.handle(m) for m in received] == [Outcome.RETRY, Outcome.PROCESSED, Outcome.DUPLICATE]
    assert calls == [envelope.id, envelope.id]
    assert await effect_counts(bus) == {envelope.id: 1}
    async with bus.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(bus_inbox)) == 1


async def test_a_failing_handler_is_retried_with_backoff_then_succeeds(bus: BusHarness) -> None:
    attempts: list[int] = []

    async def flaky(event: ExamPassed, session: AsyncSession, envelope: Envelope) -> None:
        attempts.append(1)
        await count_effect(session, envelope)  # rolled back with the failure
        if len(attempts) < 3:
            raise RuntimeError("payment service unavailable")

    bus.consumer("certification", {ExamPassed: flaky}, retry=RetryPolicy(base_seconds=10, jitter=0))
    sent = await bus.publish(ExamPassed(member_id="m1", exam="x"), topic="learning")

    assert await bus.run_until_idle() == [Outcome.RETRY]
    bus.advance(9)
    assert await bus.run_until_idle() == []  # first backoff is 10 s
    bus.advance(1)
    assert await bus.run_until_idle() == [Outcome.RETRY]
    bus.advance(19)
    assert await bus.run_until_idle() == []  # second backoff is 20 s
    bus.advance(1)
    assert await bus.run_until_idle() == [Outcome.PROCESSED]
    assert await effect_counts(bus) == {sent.id: 1}
    assert await bus.dead_letters("certification") == []


async def test_a_handler_failing_every_time_is_dead_lettered_with_its_failure(bus: BusHarness) -> None:
    async def broken(event: ExamPassed) -> None:
        raise ValueError("no such exam " + event.exam)

    bus.consumer("certification", {ExamPassed: broken}, retry=RetryPolicy(base_seconds=1, jitter=0))
    await bus.publish(ExamPassed(member_id="m1", exam="X-9"), topic="learning")
    outcomes = []
    for _ in range(5):
        outcomes += await bus.run_until_idle()
        bus.advance(60)

    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD_LETTERED]  # max_receive_count=3
    (letter,) = await bus.dead_letters("certification")
    assert letter.reason == "handler-error"
    assert letter.error_type == "ValueError"
    assert letter.error == "no such exam X-9"
    assert len(letter.record["traceback_digest"]) == 16
    assert letter.record["consumer"] == "certification"
    assert letter.record["receive_count"] == 3
    assert letter.message.attributes["ce-type"] == ExamPassed.event_type  # the envelope travels along
    assert await bus.dead_letters("certification") != []  # looking does not consume


async def test_fifo_groups_are_processed_in_order_and_a_failure_holds_its_group(bus: BusHarness) -> None:
    seen: list[str] = []
    fail_once = {"m1:2"}

    async def on_passed(event: ExamPassed) -> None:
        key = f"{event.member_id}:{event.exam}"
        if key in fail_once:
            fail_once.discard(key)
            raise RuntimeError("transient")
        seen.append(key)

    bus.consumer("ordered", {ExamPassed: on_passed}, retry=RetryPolicy(base_seconds=5, jitter=0))
    for i in range(1, 5):
        for member in ("m1", "m2"):
            await bus.publish(ExamPassed(member_id=member, exam=str(i)), topic="learning-ordered")
    await bus.run_until_idle()

    assert [k for k in seen if k.startswith("m2")] == ["m2:1", "m2:2", "m2:3", "m2:4"]
    assert [k for k in seen if k.startswith("m1")] == ["m1:1"]  # m1:2 failed; m1:3 and m1:4 wait for it
    bus.advance(5)
    await bus.run_until_idle()
    assert [k for k in seen if k.startswith("m1")] == ["m1:1", "m1:2", "m1:3", "m1:4"]


async def test_a_reminder_months_ahead_is_delivered_once_when_due(bus: BusHarness) -> None:
    received: list[ReminderDue] = []

    async def on_reminder(event: ReminderDue, session: AsyncSession, envelope: Envelope) -> None:
        received.append(event)
        await count_effect(session, envelope)

    async def on_awarded(event: CertificationAwarded, schedule) -> None:  # type: ignore[no-untyped-def]
        await schedule(
            ReminderDue(member_id=event.member_id), deliver_at=bus.now() + timedelta(days=90), queue="members"
        )

    bus.consumer("members", {CertificationAwarded: on_awarded, ReminderDue: on_reminder})
    await bus.publish(CertificationAwarded(member_id="m1", program="BPI"), topic="certification")
    await bus.run_until_idle()
    assert received == []
    async with bus.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(bus_schedule)) == 1

    bus.advance(timedelta(days=89, hours=23).total_seconds())
    await bus.run_until_idle()
    assert received == []
    bus.advance(3600)
    await bus.run_until_idle()
    bus.advance(3600)
    await bus.run_until_idle()
    assert received == [ReminderDue(member_id="m1")]
    assert list((await effect_counts(bus)).values()) == [1]
    async with bus.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(bus_schedule)) == 0


async def test_handler_wiring_fails_at_construction(bus: BusHarness) -> None:
    async def needs_mailer(event: ExamPassed, mailer: object) -> None: ...

    with pytest.raises(TypeError, match="nothing provides `mailer`"):
        bus.consumer("certification", {ExamPassed: needs_mailer})
    sent: list[object] = []

    async def with_mailer(event: ExamPassed, mailer: list[object]) -> None:
        mailer.append(event)

    bus.consumer("certification", {ExamPassed: with_mailer}, dependencies={"mailer": sent})
    await bus.publish(ExamPassed(member_id="m1", exam="x"), topic="learning")
    await bus.run_until_idle()
    assert sent == [ExamPassed(member_id="m1", exam="x")]


async def test_concurrent_handlers_of_one_batch_share_sqlite_without_locking_errors(bus: BusHarness) -> None:
    async def on_passed(session: AsyncSession, envelope: Envelope) -> None:
        await count_effect(session, envelope)
        await asyncio.sleep(0.001)

    bus.consumer("certification", {ExamPassed: on_passed}, concurrency=10)
    for i in range(40):
        await bus.publish(ExamPassed(member_id=f"m{i}", exam="x"), topic="learning")
    outcomes = await bus.run_until_idle()
    assert outcomes.count(Outcome.PROCESSED) == 40
    assert sorted((await effect_counts(bus)).values()) == [1] * 40


async def test_the_consumer_dead_letters_with_its_record_before_the_broker_does(bus: BusHarness) -> None:
    """Receives that never reached a handler (released at shutdown, held by a killed consumer) count at
    the broker; its redrive policy allows `REDRIVE_MARGIN` more, so the consumer's dead letter, with
    the failure recorded, comes first."""
    spec = TOPOLOGY.queue("certification")
    assert spec.broker_max_receive_count == spec.max_receive_count + REDRIVE_MARGIN

    async def broken(event: ExamPassed) -> None:
        raise ValueError("broken " + event.exam)

    consumer = bus.consumer("certification", {ExamPassed: broken}, retry=RetryPolicy(base_seconds=1, jitter=0))
    await bus.publish(ExamPassed(member_id="m1", exam="X-1"), topic="learning")
    assert await bus.relay.run_once() == 1  # relayed, not handled yet
    # Received without reaching a handler, as many times as the consumer would allow in all:
    for _ in range(spec.max_receive_count):
        (held,) = await bus.transport.receive("certification", wait_seconds=0)
        await bus.transport.change_visibility("certification", held.receipt, 0)  # released (or left to time out)
    assert held.receive_count == spec.max_receive_count
    outcomes = await consumer.run_once()
    assert outcomes == [Outcome.DEAD_LETTERED]  # receive count 4 >= 3: the consumer's own dead letter
    (letter,) = await bus.dead_letters("certification")
    assert letter.reason == "handler-error"
    assert letter.error == "broken X-1"
    assert letter.record["receive_count"] == spec.max_receive_count + 1


class Effect:
    """`effects` mapped for the ORM (handlers that add objects instead of executing statements)."""

    def __init__(self, event_id: str, count: int) -> None:
        self.event_id = event_id
        self.count = count


registry().map_imperatively(Effect, effects)


async def test_in_a_batch_a_failing_handler_rolls_back_only_its_own_work(bus: BusHarness) -> None:
    """`handle_many` runs each handler in a savepoint (on the inline SQLite driver straight on
    `sqlite3`): a handler that fails after writing a row, or after adding an ORM object it never
    flushed, leaves nothing behind; the others commit with their inbox rows."""

    async def on_passed(event: ExamPassed, session: AsyncSession, envelope: Envelope) -> None:
        if event.exam == "core":
            await count_effect(session, envelope)
        else:
            session.add(Effect(event_id=envelope.id, count=1))
        if event.member_id == "fails":
            raise RuntimeError("after its writes")

    consumer = bus.consumer("certification", {ExamPassed: on_passed})
    sent = [
        encode(ExamPassed(member_id=member, exam=exam), source="test")
        for member, exam in (("m1", "core"), ("fails", "core"), ("m2", "orm"), ("fails", "orm"), ("m3", "orm"))
    ]
    await bus.transport.send("certification", [message for _envelope, message in sent])
    received = await bus.transport.receive("certification", max_messages=10, wait_seconds=0)
    assert len(received) == 5
    ordered = [next(m for m in received if m.body == message.body) for _envelope, message in sent]

    outcomes = await consumer.handle_many(ordered)

    assert outcomes == [Outcome.PROCESSED, Outcome.RETRY, Outcome.PROCESSED, Outcome.RETRY, Outcome.PROCESSED]
    assert await effect_counts(bus) == {sent[0][0].id: 1, sent[2][0].id: 1, sent[4][0].id: 1}
    async with bus.sessionmaker() as session:
        inbox = set((await session.scalars(select(bus_inbox.c.event_id))).all())
    assert inbox == {sent[0][0].id, sent[2][0].id, sent[4][0].id}


async def test_in_a_batch_a_failed_orm_flush_falls_back_to_one_transaction_per_message(bus: BusHarness) -> None:
    """A flush that fails rolls back the batch's whole transaction (not just the handler's
    savepoint): the messages are then processed one by one, and only the failing one retries."""

    async def on_passed(event: ExamPassed, session: AsyncSession, envelope: Envelope) -> None:
        key = "taken" if event.member_id == "clash" else envelope.id
        session.add(Effect(event_id=key, count=1))

    async with bus.sessionmaker() as session, session.begin():
        await session.execute(effects.insert().values(event_id="taken", count=1))
    consumer = bus.consumer("certification", {ExamPassed: on_passed})
    sent = [encode(ExamPassed(member_id=member, exam="x"), source="test") for member in ("m1", "clash", "m2")]
    await bus.transport.send("certification", [message for _envelope, message in sent])
    received = await bus.transport.receive("certification", max_messages=10, wait_seconds=0)
    ordered = [next(m for m in received if m.body == message.body) for _envelope, message in sent]

    outcomes = await consumer.handle_many(ordered)

    assert outcomes == [Outcome.PROCESSED, Outcome.RETRY, Outcome.PROCESSED]
    assert await effect_counts(bus) == {"taken": 1, sent[0][0].id: 1, sent[2][0].id: 1}
    async with bus.sessionmaker() as session:
        inbox = set((await session.scalars(select(bus_inbox.c.event_id))).all())
    assert inbox == {sent[0][0].id, sent[2][0].id}
