"""Fan-out across regions at the engine level: two engines (two files), a topic in one and queues in the
other, joined by a region resolver as the wire server provides one. Same-region deliveries stay in the
publish's transaction; cross-region ones go through the durable `sns_region_deliveries` outbox (first
attempt before the publish returns, then retries), at least once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock
from scte.queue.topics import SnsError

EAST, WEST = "us-east-1", "us-west-2"


@dataclass
class Regions:
    """Engines by region and the resolver handed to each; `down` regions answer None (retry later)."""

    root: Path
    clock: ManualClock
    engines: dict[str, Engine] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def new(self, region: str) -> Engine:
        engine = Engine(EngineConfig(path=self.root / region / "broker.db", region=region, clock=self.clock))
        engine.topics.region_resolver = self.resolve
        return engine

    async def open(self, region: str) -> Engine:
        engine = await self.new(region).start()
        self.engines[region] = engine
        return engine

    async def resolve(self, region: str) -> Engine | None:
        self.calls.append(region)
        if region == "nowhere-1":
            raise LookupError("not served")
        if region in self.down:
            return None
        return self.engines.get(region)

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.close()
        self.engines.clear()


@pytest.fixture
async def regions(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Regions]:
    r = Regions(tmp_path, clock)
    await r.open(EAST)
    await r.open(WEST)
    yield r
    await r.close()


async def receive(engine: Engine, name: str) -> list[dict[str, Any]]:
    """The queue's visible messages, deleted as read."""
    got = await engine.receive_message(name, max_number=10, message_attribute_names=["All"])
    for m in got:
        await engine.delete_message(name, m["ReceiptHandle"])
    return got


async def outbox_rows(engine: Engine) -> int:
    (n,) = await engine._store.run(lambda c: c.execute("SELECT COUNT(*) FROM sns_region_deliveries").fetchone())
    return int(n)


async def settle(clock: ManualClock, seconds: float = 30.0) -> None:
    """Move the clock past the retry delays and let the background deliverer run."""
    import asyncio

    for _ in range(int(seconds)):
        clock.advance(1.0)
        for _ in range(20):
            await asyncio.sleep(0)
    await asyncio.sleep(0.05)


async def test_a_publish_reaches_queues_in_another_region_before_it_returns(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("orders")
    await east.create_queue("local")
    await west.create_queue("enveloped")
    await west.create_queue("raw")
    await east.topics.subscribe(arn, "sqs", east.queue_arn("local"))
    await east.topics.subscribe(arn, "sqs", west.queue_arn("enveloped"))
    await east.topics.subscribe(arn, "sqs", west.queue_arn("raw"), {"RawMessageDelivery": "true"})
    attributes = {
        "kind": {"DataType": "String", "StringValue": "paid"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    result = await east.topics.publish(arn, "order 7", subject="hello", message_attributes=attributes)

    (local,) = await receive(east, "local")
    (enveloped,) = await receive(west, "enveloped")
    (raw,) = await receive(west, "raw")
    document = json.loads(enveloped["Body"])
    assert document == json.loads(local["Body"]) | {"UnsubscribeURL": document["UnsubscribeURL"]}
    assert document["MessageId"] == result["MessageId"] and document["TopicArn"] == arn
    assert document["Subject"] == "hello" and document["Message"] == "order 7"
    assert document["MessageAttributes"]["blob"] == {"Type": "Binary", "Value": "AP8="}
    assert raw["Body"] == "order 7"
    assert raw["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\xff"
    assert raw["MessageAttributes"]["kind"]["StringValue"] == "paid"
    assert await outbox_rows(east) == 0
    assert east.topics.metrics()[arn]["delivered"] == 3
    assert west.topics.queue_metrics() == {"enveloped": 1, "raw": 1}
    assert east.topics.queue_metrics() == {"local": 1}


async def test_an_unavailable_region_is_retried_and_delivered_once(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t")
    await west.create_queue("q")
    await east.topics.subscribe(arn, "sqs", west.queue_arn("q"), {"RawMessageDelivery": "true"})
    regions.down.add(WEST)
    for i in range(3):
        await east.topics.publish(arn, f"m{i}")
    assert await receive(west, "q") == []
    assert await outbox_rows(east) == 3
    await settle(regions.clock, 5)
    assert await outbox_rows(east) == 3  # still down: kept, retried with a backoff
    regions.down.clear()
    await settle(regions.clock, 30)
    assert [m["Body"] for m in await receive(west, "q")] == ["m0", "m1", "m2"]  # in order, once each
    assert await outbox_rows(east) == 0
    await settle(regions.clock, 30)
    assert await receive(west, "q") == []


async def test_pending_deliveries_survive_a_restart(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t")
    await west.create_queue("q")
    await east.topics.subscribe(arn, "sqs", west.queue_arn("q"), {"RawMessageDelivery": "true"})
    regions.down.add(WEST)
    await east.topics.publish(arn, "kept across the restart")
    await east.close()
    regions.down.clear()
    regions.engines[EAST] = await regions.new(EAST).start()  # resumes the outbox at start
    await settle(regions.clock, 2)
    assert [m["Body"] for m in await receive(west, "q")] == ["kept across the restart"]
    assert await outbox_rows(regions.engines[EAST]) == 0


async def test_missing_remote_queue_goes_to_the_dead_letter_queue_or_is_undeliverable(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t")
    await east.create_queue("dlq")
    policy = json.dumps({"deadLetterTargetArn": east.queue_arn("dlq")})
    await east.topics.subscribe(arn, "sqs", west.queue_arn("gone"), {"RedrivePolicy": policy})
    await east.topics.subscribe(arn, "sqs", west.queue_arn("also-gone"))
    await east.topics.subscribe(arn, "sqs", f"arn:aws:sqs:nowhere-1:{east.account_id}:q")
    await east.topics.publish(arn, "lost?")
    (dead,) = await receive(east, "dlq")
    assert json.loads(dead["Body"])["Message"] == "lost?"
    counts = east.topics.metrics()[arn]
    assert counts["dead_lettered"] == 1 and counts["undeliverable"] == 2
    assert await outbox_rows(east) == 0


async def test_same_region_refusal_rolls_back_the_cross_region_rows_too(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t")
    await east.create_queue("small", {"MaximumMessageSize": "1024"})
    await west.create_queue("q")
    await east.topics.subscribe(arn, "sqs", east.queue_arn("small"), {"RawMessageDelivery": "true"})
    await east.topics.subscribe(arn, "sqs", west.queue_arn("q"), {"RawMessageDelivery": "true"})
    with pytest.raises(SnsError) as info:
        await east.topics.publish(arn, "x" * 2000)
    assert info.value.code == "InvalidParameter"
    assert await outbox_rows(east) == 0 and await receive(west, "q") == []
    await east.topics.publish(arn, "fits")
    assert [m["Body"] for m in await receive(west, "q")] == ["fits"]


async def test_fifo_topic_to_a_fifo_queue_in_another_region(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    await west.create_queue("q.fifo", {"FifoQueue": "true"})
    await east.topics.subscribe(arn, "sqs", west.queue_arn("q.fifo"), {"RawMessageDelivery": "true"})
    entries = [{"Id": f"e{i}", "Message": f"m{i}", "MessageGroupId": "g"} for i in range(5)]
    batch = await east.topics.publish_batch(arn, entries)
    assert len(batch["Successful"]) == 5
    await east.topics.publish(arn, "m0", message_group_id="g")  # a duplicate: delivers nothing
    bodies: list[str] = []
    while got := await receive(west, "q.fifo"):
        bodies += [m["Body"] for m in got]
    assert bodies == [f"m{i}" for i in range(5)]


async def test_without_a_resolver_other_regions_are_undeliverable(tmp_path: Path) -> None:
    async with Engine(EngineConfig(path=tmp_path / "alone.db")) as engine:
        arn = await engine.topics.create_topic("t")
        await engine.topics.subscribe(arn, "sqs", f"arn:aws:sqs:{WEST}:{engine.account_id}:q")
        await engine.topics.publish(arn, "nowhere to go")
        assert engine.topics.metrics()[arn]["undeliverable"] == 1
        assert await outbox_rows(engine) == 0


async def test_unsubscribe_drops_its_pending_cross_region_deliveries(regions: Regions) -> None:
    east, west = regions.engines[EAST], regions.engines[WEST]
    arn = await east.topics.create_topic("t")
    await west.create_queue("q")
    sub = await east.topics.subscribe(arn, "sqs", west.queue_arn("q"))
    regions.down.add(WEST)
    await east.topics.publish(arn, "never")
    assert await outbox_rows(east) == 1
    await east.topics.unsubscribe(sub)
    assert await outbox_rows(east) == 0
