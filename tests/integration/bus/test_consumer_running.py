"""The consumer running in the background: bad messages, timeouts, heartbeats, shutdown, Lambda."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from scte.bus.consumer import Consumer, Outcome, RetryPolicy
from scte.bus.contracts import Event, EventRegistry
from scte.bus.envelope import encode
from scte.bus.lambda_adapter import lambda_handler, process_records
from scte.bus.testing import BusHarness
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import IncomingMessage

contracts = EventRegistry()


@contracts.register
class Job(Event):
    event_type: ClassVar[str] = "jobs.job_submitted.v1"
    key: str
    seconds: float = 0.0
    fail: bool = False

    def subject(self) -> str | None:
        return self.key.split(":")[0]


TOPOLOGY = Topology(
    topics=(TopicSpec("jobs"), TopicSpec("jobs-ordered", fifo=True)),
    queues=(
        QueueSpec("strict", subscriptions=(Subscription("jobs"),), max_receive_count=1),
        QueueSpec("short", visibility_timeout=2),
        QueueSpec("short-ordered", fifo=True, visibility_timeout=2),
        QueueSpec("plain"),
        QueueSpec("lambda", max_receive_count=2),
        QueueSpec("lambda-ordered", fifo=True, max_receive_count=2),
    ),
)


async def job(event: Job, done: list[str]) -> None:
    if event.fail:
        raise RuntimeError(f"job {event.key} failed")
    await asyncio.sleep(event.seconds)
    done.append(event.key)


@pytest.fixture
async def bus() -> AsyncIterator[BusHarness]:
    async with BusHarness(TOPOLOGY, contracts, source="jobs") as harness:
        yield harness


async def eventually(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def envelope_attributes(event_type: str = Job.event_type) -> dict[str, str]:
    _envelope, message = encode(Job(key="x"), source="test")
    return {**message.attributes, "ce-type": event_type}


async def test_every_bad_message_path_ends_in_a_dead_letter_and_the_consumer_keeps_going(bus: BusHarness) -> None:
    done: list[str] = []
    consumer = bus.consumer("strict", {Job: job}, dependencies={"done": done}, handler_timeout=0.3, wait_seconds=1)
    await consumer.start()
    try:
        await bus.send_raw("strict", "{not json", envelope_attributes())
        await bus.send_raw("strict", '{"key": "x"}', envelope_attributes("jobs.unheard_of.v1"))
        await bus.send_raw("strict", '{"key": 42, "extra": true}', envelope_attributes())
        await bus.send_raw("strict", '{"key": "x"}', {})  # no envelope at all
        await bus.publish(Job(key="boom", fail=True), topic="jobs")
        await bus.publish(Job(key="slow", seconds=5), topic="jobs")
        await bus.relay.run_once()
        await eventually(lambda: _count(bus, 6))
        await bus.publish(Job(key="good"), topic="jobs")
        await bus.relay.run_once()

        async def good_done() -> bool:
            return done == ["good"]

        await eventually(good_done)
    finally:
        await consumer.stop()

    letters = {letter.reason: letter for letter in await bus.dead_letters("strict")}
    assert sorted(letters) == sorted(
        ["undecodable", "unknown-event-type", "schema-mismatch", "handler-error", "handler-timeout"]
    )
    assert len(await bus.dead_letters("strict")) == 6  # two undecodable: bad JSON, no envelope
    assert "not valid JSON" in next(d.error for d in await bus.dead_letters("strict") if d.message.body == "{not json")
    assert letters["unknown-event-type"].error_type == "UnknownEventType"
    assert letters["schema-mismatch"].error_type == "SchemaMismatch"
    assert "key" in letters["schema-mismatch"].error
    assert letters["handler-error"].error == "job boom failed"
    assert letters["handler-timeout"].error_type == "HandlerTimeout"
    for letter in letters.values():
        assert letter.record["consumer"] == "strict"
        assert len(letter.record["traceback_digest"]) == 16
    assert consumer.stats.dead_lettered == 6
    assert consumer.stats.processed == 1


async def _count(bus: BusHarness, expected: int) -> bool:
    return len(await bus.dead_letters("strict")) >= expected


async def long_job_in_hand(bus: BusHarness, queue: str, key: str, seconds: float) -> tuple[Consumer, list[str]]:
    """A started consumer of `queue` holding one job that runs `seconds`; the keys of finished jobs."""
    done: list[str] = []
    consumer = bus.consumer(queue, {Job: job}, dependencies={"done": done}, wait_seconds=1)
    _envelope, message = encode(Job(key=key, seconds=seconds), source="test")
    await bus.transport.send(queue, [message])
    await consumer.start()
    await eventually(lambda: _truthy(consumer.in_hand == 1))
    return consumer, done


async def test_a_long_handler_keeps_its_message_hidden_with_heartbeats(bus: BusHarness) -> None:
    consumer, done = await long_job_in_hand(bus, "short", "long", 4.5)
    try:
        # The broker's clock is virtual: after each heartbeat (about one a second of real time, when the
        # reservation has under 1 s left) move it 1.5 s on, past the reservation as it stood before the beat.
        for beat in (1, 2, 3):
            await eventually(lambda beat=beat: _truthy(consumer.stats.heartbeats >= beat))
            bus.advance(1.5)
        # visibility was 2 s; 4.5 s later it is still hidden because the heartbeats extended it
        assert done == []  # the handler still runs: the message is hidden, not deleted
        assert await bus.transport.receive("short", wait_seconds=0) == []
        await eventually(lambda: _truthy(done == ["long"]))
    finally:
        await consumer.stop()
    assert consumer.stats.heartbeats >= 1
    assert consumer.stats.processed == 1


async def test_a_reservation_the_broker_will_not_extend_is_not_asked_again(
    bus: BusHarness, caplog: pytest.LogCaptureFixture
) -> None:
    consumer, done = await long_job_in_hand(bus, "short-ordered", "g:long", 2.5)
    try:
        # 13 hours pass on the broker's clock: the reservation ended long ago (SQS's 12-hour cap would
        # refuse it anyway) and the message is handed out again, so on this FIFO queue the handle in
        # hand is outdated. The heartbeat runs every 0.5 s while the handler takes 2.5 s more.
        bus.advance(13 * 3600)
        await eventually(lambda: _truthy(done == ["g:long"]))
    finally:
        await consumer.stop()
    stats = consumer.stats
    # Refused once, then not asked again: at most that refusal and the first delivery's delete with
    # its outdated handle (when the second delivery came first), not one per heartbeat (five or so).
    assert caplog.text.count("can no longer be extended") == 1, (caplog.text, stats)
    assert stats.transport_errors <= 2, (caplog.text, stats)
    assert stats.processed == 1, stats


async def _truthy(value: bool) -> bool:
    return value


async def test_stop_finishes_handlers_in_hand_and_releases_what_did_not_start(bus: BusHarness) -> None:
    done: list[str] = []
    consumer = bus.consumer("plain", {Job: job}, dependencies={"done": done}, concurrency=2, wait_seconds=1)
    await bus.transport.send("plain", [encode(Job(key=f"k{i}", seconds=0.5), source="t")[1] for i in range(2)])
    await consumer.start()
    await eventually(lambda: _truthy(consumer.in_hand == 2))
    await consumer.stop(grace_seconds=5)
    assert sorted(done) == ["k0", "k1"]  # finished, not abandoned
    assert consumer.in_hand == 0

    slow = bus.consumer("plain", {Job: job}, dependencies={"done": done}, name="slow", wait_seconds=1)
    await bus.transport.send("plain", [encode(Job(key="stuck", seconds=30), source="t")[1]])
    await slow.start()
    await eventually(lambda: _truthy(slow.in_hand == 1))
    await slow.stop(grace_seconds=0.2)  # too slow: cancelled, rolled back, released at once
    assert "stuck" not in done
    assert slow.stats.released == 1
    (again,) = await bus.transport.receive("plain", wait_seconds=0)
    assert json.loads(again.body)["key"] == "stuck"


async def test_stop_releases_fifo_messages_waiting_behind_their_group(bus: BusHarness) -> None:
    done: list[str] = []
    consumer = bus.consumer("lambda-ordered", {Job: job}, dependencies={"done": done}, wait_seconds=1)
    messages = [encode(Job(key=f"g:{i}", seconds=0.4), source="t")[1] for i in range(4)]
    await bus.transport.send("lambda-ordered", messages)
    await consumer.start()
    await eventually(lambda: _truthy(consumer.in_hand == 4))
    await consumer.stop(grace_seconds=5)
    assert done == ["g:0"]  # the one running finished; the three behind it were released
    assert consumer.stats.released == 3
    received = await bus.transport.receive("lambda-ordered", max_messages=10, wait_seconds=0)
    assert [json.loads(m.body)["key"] for m in received] == ["g:1", "g:2", "g:3"]


def lambda_record(message: IncomingMessage, arn: str) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": str(message.receive_count), "SentTimestamp": "0"}
    if message.group_id:
        attributes["MessageGroupId"] = message.group_id
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {k: {"dataType": "String", "stringValue": v} for k, v in message.attributes.items()},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


async def test_lambda_adapter_reports_failures_and_dead_letters_the_last_attempt(bus: BusHarness) -> None:
    done: list[str] = []
    consumer = bus.consumer("lambda", {Job: job}, dependencies={"done": done}, retry=RetryPolicy(jitter=0))
    messages = [encode(Job(key=k, fail=k == "bad"), source="test")[1] for k in ("a", "bad", "c")]
    await bus.transport.send("lambda", messages)
    received = await bus.transport.receive("lambda", max_messages=10, wait_seconds=0)
    records = [lambda_record(m, "arn:aws:sqs:us-east-1:123456789012:lambda") for m in received]

    failures = await process_records(consumer, records)
    bad = next(m for m in received if '"bad"' in m.body)
    assert failures == [{"itemIdentifier": bad.message_id}]
    assert sorted(done) == ["a", "c"]

    bus.advance(5)
    (again,) = await bus.transport.receive("lambda", wait_seconds=0)
    assert again.receive_count == 2
    failures = await process_records(consumer, [lambda_record(again, "arn")])
    assert failures == []  # dead-lettered on its last attempt: Lambda may delete it
    (letter,) = await bus.dead_letters("lambda")
    assert letter.reason == "handler-error"


async def test_lambda_adapter_on_fifo_stops_at_the_first_failure(bus: BusHarness) -> None:
    done: list[str] = []
    consumer = bus.consumer("lambda-ordered", {Job: job}, dependencies={"done": done})
    messages = [encode(Job(key=f"g:{k}", fail=k == 2), source="test")[1] for k in range(4)]
    await bus.transport.send("lambda-ordered", messages)
    received = await bus.transport.receive("lambda-ordered", max_messages=10, wait_seconds=0)
    assert len(received) == 4
    failures = await process_records(consumer, [lambda_record(m, "arn") for m in received])
    assert done == ["g:0", "g:1"]
    assert failures == [{"itemIdentifier": m.message_id} for m in received[2:]]


def test_lambda_handler_is_a_plain_function_with_its_own_event_loop() -> None:
    calls: list[list[str]] = []

    class FakeConsumer(Consumer):
        def __init__(self) -> None:
            self.spec = TOPOLOGY.queue("lambda")
            self.queue = "lambda"

        async def handle_batch(self, messages: Any, *, acknowledge: bool = True) -> list[Outcome]:
            calls.append([m.message_id for m in messages])
            assert acknowledge is False
            return [Outcome.PROCESSED, Outcome.RETRY][: len(messages)]

    handler = lambda_handler(FakeConsumer)
    records = [
        {"messageId": i, "receiptHandle": "r", "body": "{}", "attributes": {"ApproximateReceiveCount": "1"}}
        for i in ("m1", "m2")
    ]
    assert handler({"Records": records}, None) == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert handler({"Records": []}, None) == {"batchItemFailures": []}
    assert calls == [["m1", "m2"], []]


@pytest.mark.parametrize("per_event", [False, True])
async def test_a_receive_is_one_transaction_unless_each_event_gets_its_own(bus: BusHarness, per_event: bool) -> None:
    # Handlers of one transaction share its session: distinct sessions = transactions.
    sessions: list[Any] = []

    async def record(session: Any) -> None:
        sessions.append(session)

    consumer = bus.consumer("plain", {Job: record}, concurrency=10, wait_seconds=1, transaction_per_event=per_event)
    await bus.transport.send("plain", [encode(Job(key=f"k{i}"), source="t")[1] for i in range(10)])
    await consumer.start()
    try:
        await eventually(lambda: _truthy(len(sessions) == 10))
    finally:
        await consumer.stop()
    transactions = len({id(s) for s in sessions})
    if per_event:
        assert transactions == 10
    else:  # the ten came in one or a few receives, each handled in one transaction
        assert transactions < 10, consumer.stats
