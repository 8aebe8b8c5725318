"""The transport contract: one suite, every transport.

- in-process: `InProcessTransport` on a real engine (no HTTP);
- scte-server: `AwsTransport` (aiobotocore) against `scte queue serve` in a subprocess;
- moto: `AwsTransport` against `moto_server`, an independent SQS/SNS implementation.

What a test checks on the broker itself (queue attributes, subscriptions) it asks through a separate
client (the engine, or boto3), not through the transport under test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import boto3
import pytest

from scte.bus.contracts import Event, EventRegistry
from scte.bus.envelope import decode, encode
from scte.bus.topology import REDRIVE_MARGIN, QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import IncomingMessage, OutgoingMessage, Transport, TransportError
from scte.bus.transports.aws import AwsTransport
from scte.bus.transports.inprocess import InProcessTransport
from scte.queue.engine import Engine, EngineConfig

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}

contracts = EventRegistry()


@contracts.register
class OrderPlaced(Event):
    event_type: ClassVar[str] = "shop.order_placed.v1"
    order_id: str
    member_id: str
    total_cents: int = 0

    def subject(self) -> str | None:
        return self.member_id


@contracts.register
class OrderCancelled(Event):
    event_type: ClassVar[str] = "shop.order_cancelled.v1"
    order_id: str
    member_id: str

    def subject(self) -> str | None:
        return self.member_id


class Broker:
    """The broker seen from outside the transport under test."""

    async def queue_attributes(self, physical: str) -> dict[str, str]:
        raise NotImplementedError

    async def subscriptions(self, topic_physical: str) -> list[dict[str, str]]:
        """Each subscription's attributes."""
        raise NotImplementedError


class EngineBroker(Broker):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def queue_attributes(self, physical: str) -> dict[str, str]:
        return await self.engine.get_queue_attributes(physical)

    async def subscriptions(self, topic_physical: str) -> list[dict[str, str]]:
        topics = self.engine.topics
        listed, _ = await topics.list_subscriptions_by_topic(topics.topic_arn(topic_physical))
        return [await topics.get_subscription_attributes(s["SubscriptionArn"]) for s in listed]


class Boto3Broker(Broker):
    def __init__(self, endpoint: str) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
        self.sns = boto3.client("sns", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)

    async def queue_attributes(self, physical: str) -> dict[str, str]:
        def read() -> dict[str, str]:
            url = self.sqs.get_queue_url(QueueName=physical)["QueueUrl"]
            return dict(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])

        return await asyncio.to_thread(read)

    async def subscriptions(self, topic_physical: str) -> list[dict[str, str]]:
        def read() -> list[dict[str, str]]:
            arn = next(
                t["TopicArn"] for t in self.sns.list_topics()["Topics"] if t["TopicArn"].endswith(":" + topic_physical)
            )
            subs = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
            return [
                self.sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"] for s in subs
            ]

        return await asyncio.to_thread(read)


@dataclass
class Bus:
    transport: Transport
    broker: Broker
    prefix: str
    kind: str


@pytest.fixture(params=["inprocess", "scte-server", "moto"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    kind = request.param
    if kind == "inprocess":
        engine = await Engine(EngineConfig(path=tmp_path / "broker.db")).start()
        transport: Transport = InProcessTransport(engine, prefix)
        try:
            yield Bus(transport, EngineBroker(engine), prefix, kind)
        finally:
            await transport.close()
            await engine.close()
        return
    endpoint = (
        request.getfixturevalue("scte_server").endpoint
        if kind == "scte-server"
        else request.getfixturevalue("moto_endpoint")
    )
    transport = AwsTransport(prefix, endpoint_url=endpoint, region=REGION, **CREDENTIALS)
    try:
        yield Bus(transport, Boto3Broker(endpoint), prefix, kind)
    finally:
        await transport.close()


def shop_topology(
    *,
    visibility_timeout: int = 30,
    max_receive_count: int = 5,
    cancelled_types: tuple[str, ...] = ("shop.order_cancelled.v1",),
) -> Topology:
    return Topology(
        topics=(TopicSpec("orders"), TopicSpec("ledger", fifo=True)),
        queues=(
            QueueSpec("audit", subscriptions=(Subscription("orders"),)),
            QueueSpec(
                "mail",
                subscriptions=(Subscription("orders", event_types=("shop.order_placed.v1",)),),
                visibility_timeout=visibility_timeout,
                max_receive_count=max_receive_count,
            ),
            QueueSpec("refunds", subscriptions=(Subscription("orders", event_types=cancelled_types),)),
            QueueSpec("books", fifo=True, subscriptions=(Subscription("ledger"),)),
        ),
    )


async def drain(transport: Transport, queue: str, expected: int, *, timeout: float = 10) -> list[IncomingMessage]:
    """Receive (and delete) until `expected` messages came, or `timeout`; then one short poll for extras."""
    got: list[IncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < expected and asyncio.get_running_loop().time() < deadline:
        batch = await transport.receive(queue, max_messages=10, wait_seconds=1)
        got.extend(batch)
        if batch:
            await transport.delete(queue, [m.receipt for m in batch])
    extra = await transport.receive(queue, max_messages=10, wait_seconds=0)
    got.extend(extra)
    return got


def placed(order: str, member: str = "m1") -> Event:
    return OrderPlaced(order_id=order, member_id=member)


# -- provisioning -----------------------------------------------------------------------------------------


async def test_provision_is_idempotent_and_updates_changed_attributes(bus: Bus) -> None:
    topology = shop_topology()
    await bus.transport.provision(topology)
    await bus.transport.provision(topology)  # a second run changes nothing and does not fail

    mail = await bus.broker.queue_attributes(f"{bus.prefix}mail")
    assert mail["VisibilityTimeout"] == "30"
    redrive = json.loads(mail["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{bus.prefix}mail-dlq")
    assert int(redrive["maxReceiveCount"]) == 5 + REDRIVE_MARGIN  # the consumer dead-letters first
    books = await bus.broker.queue_attributes(f"{bus.prefix}books.fifo")
    assert books["FifoQueue"] == "true"
    assert json.loads(books["RedrivePolicy"])["deadLetterTargetArn"].endswith(f":{bus.prefix}books-dlq.fifo")
    subs = await bus.broker.subscriptions(f"{bus.prefix}orders")
    assert len(subs) == 3
    assert all(s["RawMessageDelivery"] == "true" for s in subs)

    changed = shop_topology(
        visibility_timeout=45, max_receive_count=3, cancelled_types=("shop.order_cancelled.v1", "shop.order_placed.v1")
    )
    await bus.transport.provision(changed)
    mail = await bus.broker.queue_attributes(f"{bus.prefix}mail")
    assert mail["VisibilityTimeout"] == "45"
    assert int(json.loads(mail["RedrivePolicy"])["maxReceiveCount"]) == 3 + REDRIVE_MARGIN
    subs = await bus.broker.subscriptions(f"{bus.prefix}orders")
    assert len(subs) == 3  # updated in place, not subscribed again
    refunds = next(s for s in subs if s["Endpoint"].endswith(f":{bus.prefix}refunds"))
    assert sorted(json.loads(refunds["FilterPolicy"])["ce-type"]) == ["shop.order_cancelled.v1", "shop.order_placed.v1"]

    # The changed filter is in force: refunds now also gets order_placed.
    _env, message = encode(placed("o-1"), source="test")
    await bus.transport.publish("orders", [message])
    assert [m.attributes["ce-type"] for m in await drain(bus.transport, "refunds", 1)] == ["shop.order_placed.v1"]

    # A subscription dropped from the code is removed from the broker.
    fewer = Topology(
        topics=changed.topics, queues=(*(q for q in changed.queues if q.name != "audit"), QueueSpec("audit"))
    )
    await bus.transport.provision(fewer)
    assert len(await bus.broker.subscriptions(f"{bus.prefix}orders")) == 2


async def test_a_fresh_transport_finds_provisioned_names(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    other = _sibling(bus)
    try:
        _env, message = encode(placed("o-2"), source="test")
        await other.publish("ledger", [message])  # a FIFO topic, found without the topology
        got = await drain(other, "books", 1)
        assert [m.body for m in got] == [message.body]
        if isinstance(other, AwsTransport):
            # the look-ups went through the direct client: no aiobotocore client (nor botocore's service
            # models, ~17 MB a process) in a service that only publishes and consumes (issue 16)
            assert other._clients == {}
    finally:
        await other.close()


def _sibling(bus: Bus) -> Transport:
    """A second transport on the same broker that has not provisioned anything itself."""
    if isinstance(bus.transport, InProcessTransport):
        return InProcessTransport(bus.transport.engine, bus.prefix)
    assert isinstance(bus.transport, AwsTransport)
    return AwsTransport(bus.prefix, endpoint_url=bus.transport.endpoint_url, region=REGION, **CREDENTIALS)


# -- publish, fan-out, filters ------------------------------------------------------------------------------


async def test_publish_fans_out_to_subscribed_queues_by_event_type(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    events = [placed("o-1"), OrderCancelled(order_id="o-2", member_id="m1"), placed("o-3", "m2")]
    encoded = [encode(e, source="shop") for e in events]
    await bus.transport.publish("orders", [m for _e, m in encoded[:2]])  # a batch
    await bus.transport.publish("orders", [encoded[2][1]])  # a single publish

    audit = await drain(bus.transport, "audit", 3)
    mail = await drain(bus.transport, "mail", 2)
    refunds = await drain(bus.transport, "refunds", 1)
    assert sorted(m.attributes["ce-id"] for m in audit) == sorted(e.id for e, _m in encoded)
    assert sorted(m.attributes["ce-id"] for m in mail) == sorted([encoded[0][0].id, encoded[2][0].id])
    assert [m.attributes["ce-id"] for m in refunds] == [encoded[1][0].id]

    # Raw delivery: the body is the event's JSON and the envelope survives the trip.
    by_id = {e.id: (e, event) for (e, _m), event in zip(encoded, events, strict=True)}
    for message in audit:
        envelope, event = decode(message, contracts)
        sent_envelope, sent_event = by_id[envelope.id]
        assert event == sent_event
        assert envelope == sent_envelope
        assert message.receive_count == 1
        assert message.sent_timestamp_ms > 0


async def test_publish_many_splits_into_batches(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    messages = [encode(placed(f"o-{i}"), source="shop")[1] for i in range(23)]
    await bus.transport.publish("orders", messages)
    got = await drain(bus.transport, "audit", 23)
    assert sorted(m.body for m in got) == sorted(m.body for m in messages)


# -- send, receive, delete, visibility ---------------------------------------------------------------------


async def test_send_receive_delete(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    messages = [OutgoingMessage(body=json.dumps({"n": i}), attributes={"kind": "command"}) for i in range(12)]
    await bus.transport.send("mail", messages)
    got: list[IncomingMessage] = []
    for _ in range(20):
        batch = await bus.transport.receive("mail", max_messages=10, wait_seconds=1)
        assert all(m.queue == "mail" and m.attributes == {"kind": "command"} for m in batch)
        got.extend(batch)
        await bus.transport.delete("mail", [m.receipt for m in batch])
        if len(got) >= 12:
            break
    assert sorted(json.loads(m.body)["n"] for m in got) == list(range(12))
    assert await bus.transport.receive("mail", wait_seconds=0) == []


async def test_receive_long_polls_until_a_message_arrives(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bus.transport.receive("audit", wait_seconds=1) == []
    assert loop.time() - started >= 0.9

    async def later() -> None:
        await asyncio.sleep(0.5)
        await bus.transport.send("audit", [OutgoingMessage(body="{}")])

    task = asyncio.create_task(later())
    got = await bus.transport.receive("audit", wait_seconds=10)
    await task
    if not got:  # a broker may answer a long poll before a message sent during it is visible
        got = await bus.transport.receive("audit", wait_seconds=5)
    assert [m.body for m in got] == ["{}"]
    assert loop.time() - started < 9


async def test_change_visibility_hides_and_releases(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    await bus.transport.send("mail", [OutgoingMessage(body='{"x": 1}')])
    (first,) = await bus.transport.receive("mail", wait_seconds=5, visibility_timeout=30)
    assert first.receive_count == 1
    assert await bus.transport.receive("mail", wait_seconds=0) == []  # hidden
    await bus.transport.change_visibility("mail", first.receipt, 0)  # released now
    (second,) = await bus.transport.receive("mail", wait_seconds=5, visibility_timeout=1)
    assert second.message_id == first.message_id
    assert second.receive_count == 2
    await bus.transport.change_visibility("mail", second.receipt, 60)  # a heartbeat: hidden for longer
    await asyncio.sleep(1.5)
    assert await bus.transport.receive("mail", wait_seconds=0) == []
    await bus.transport.delete("mail", [second.receipt])


# -- FIFO ---------------------------------------------------------------------------------------------------


async def test_fifo_topic_keeps_order_per_group(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    members = ["m1", "m2", "m3"]
    sent = [encode(placed(f"o-{i}", members[i % 3]), source="shop") for i in range(15)]
    await bus.transport.publish("ledger", [m for _e, m in sent[:9]])
    for _e, m in sent[9:]:
        await bus.transport.publish("ledger", [m])

    received: list[IncomingMessage] = []
    for _ in range(40):
        batch = await bus.transport.receive("books", max_messages=10, wait_seconds=1)
        received.extend(batch)
        if batch:
            await bus.transport.delete("books", [m.receipt for m in batch])
        if len(received) >= 15:
            break
    assert len(received) == 15
    for member in members:
        expected = [e.id for e, _m in sent if e.subject == member]
        got = [m.attributes["ce-id"] for m in received if m.attributes.get("ce-subject") == member]
        assert got == expected
        assert {m.group_id for m in received if m.attributes.get("ce-subject") == member} == {member}


async def test_fifo_redelivery_of_the_same_event_is_deduplicated(bus: Bus) -> None:
    await bus.transport.provision(shop_topology())
    _env, message = encode(placed("o-1"), source="shop")
    await bus.transport.publish("ledger", [message])
    await bus.transport.publish("ledger", [message])  # the outbox relay may publish twice
    got = await drain(bus.transport, "books", 1)
    assert len(got) == 1


# -- dead letters -------------------------------------------------------------------------------------------


async def test_dead_letter_queue_after_the_brokers_max_receive_count(bus: Bus) -> None:
    topology = shop_topology(max_receive_count=2)
    await bus.transport.provision(topology)
    limit = topology.queue("mail").broker_max_receive_count
    assert limit == 2 + REDRIVE_MARGIN
    _env, message = encode(placed("o-9"), source="shop")
    await bus.transport.send("mail", [message])
    counts = []
    for _ in range(limit):
        (m,) = await bus.transport.receive("mail", wait_seconds=5, visibility_timeout=0)
        counts.append(m.receive_count)
    assert counts == list(range(1, limit + 1))
    assert await bus.transport.receive("mail", wait_seconds=1) == []  # moved on the next receive
    dead = await drain(bus.transport, "mail-dlq", 1)
    assert [m.body for m in dead] == [message.body]
    assert dead[0].attributes == dict(message.attributes)


# -- errors -------------------------------------------------------------------------------------------------


async def test_unknown_names_raise_transport_error(bus: Bus) -> None:
    with pytest.raises(TransportError):
        await bus.transport.receive("nope", wait_seconds=0)
    with pytest.raises(TransportError):
        await bus.transport.publish("nope", [OutgoingMessage(body="{}")])
    await bus.transport.provision(shop_topology())
    with pytest.raises(TransportError):
        await bus.transport.delete("mail", ["not-a-receipt"])


async def test_aws_transport_reports_an_unreachable_broker() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    transport = AwsTransport(
        endpoint_url=f"http://127.0.0.1:{port}", region=REGION, connect_timeout=1, max_attempts=1, **CREDENTIALS
    )
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportError) as info:
            await transport.send("q", [OutgoingMessage(body="{}")])
        assert info.value.code is None
        assert "unreachable" in str(info.value)
        with pytest.raises(TransportError):
            await transport.publish("t", [OutgoingMessage(body="{}")])
        assert asyncio.get_running_loop().time() - started < 10
    finally:
        await transport.close()


@pytest.mark.parametrize("direct_calls", [True, False], ids=["direct", "aiobotocore"])
async def test_aws_transport_signs_what_a_strict_broker_checks(tmp_path: Path, direct_calls: bool) -> None:
    """The hot calls go through the transport's own client (SigV4 by hand): a broker that verifies
    signatures accepts them, and refuses them signed with the wrong secret, as it does aiobotocore's."""
    from server_harness import start_server

    server = start_server(tmp_path / "strict", "--auth", "strict", "--access-key", "AKIDSTRICT:right-secret")
    options = {"endpoint_url": server.endpoint, "region": REGION, "max_attempts": 1, "direct_calls": direct_calls}
    good = AwsTransport("strict-", aws_access_key_id="AKIDSTRICT", aws_secret_access_key="right-secret", **options)
    bad = AwsTransport("strict-", aws_access_key_id="AKIDSTRICT", aws_secret_access_key="wrong-secret", **options)
    try:
        await good.provision(shop_topology())
        odd = {"ce-id": "a b=c&d+e", "note": "é ü / ?"}  # what form and JSON encoding must carry intact
        await good.publish("orders", [OutgoingMessage(body='{"n": "é+ /"}', attributes=odd)])
        await good.publish("orders", [OutgoingMessage(body="{}"), OutgoingMessage(body="[]")])
        await good.send("audit", [OutgoingMessage(body="sent")])
        received: list[IncomingMessage] = []
        for _ in range(10):
            received += await good.receive("audit", wait_seconds=1)
            if len(received) >= 4:
                break
        assert sorted(m.body for m in received) == sorted(['{"n": "é+ /"}', "{}", "[]", "sent"])
        assert next(m for m in received if m.body.startswith('{"n"')).attributes == odd
        await good.change_visibility("audit", received[0].receipt, 0)
        await good.delete("audit", [m.receipt for m in received])
        for call in (
            bad.publish("orders", [OutgoingMessage(body="{}")]),
            bad.send("audit", [OutgoingMessage(body="{}")]),
            bad.receive("audit", wait_seconds=0),
        ):
            with pytest.raises(TransportError) as info:
                await call
            assert info.value.code in ("SignatureDoesNotMatch", "InvalidClientTokenId", "IncompleteSignature")
    finally:
        await good.close()
        await bad.close()
        server.stop()
