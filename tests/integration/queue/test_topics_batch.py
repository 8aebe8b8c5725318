"""PublishBatch: the all-at-once path gives each entry what publishing it alone gives, and gives way to the
entry-by-entry path when any entry fails."""

from __future__ import annotations

import json
from typing import Any

from scte.queue import Engine
from scte.queue.checksums import md5_of_body, md5_of_message_attributes


def envelope(i: int) -> dict[str, dict[str, str]]:
    """The bus's nine envelope attributes (scte.bus.envelope)."""
    values = {
        "ce-id": f"0b9f6a3e-8c1d-4f5e-9a7b-{i:012d}",
        "ce-type": "bench.measured.v1",
        "ce-source": "bench",
        "ce-specversion": "1.0",
        "ce-time": f"2026-12-04T17:53:{i % 60:02d}.123456Z",
        "correlation-id": f"c0ffee00-0000-4000-8000-{i:012d}",
        "ce-subject": f'subject "{i}" \\ 100%',
        "ce-datacontenttype": "application/json; charset=utf-8",
        "traceparent": f"00-4bf92f3577b34da6a3ce929d0e0e{i:04d}-00f067aa0ba902b7-01",
    }
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


async def raw_queue(engine: Engine, topic: str, queue: str, **queue_attrs: str) -> str:
    arn = await engine.topics.create_topic(topic)
    await engine.create_queue(queue, queue_attrs or None)
    await engine.topics.subscribe(arn, "sqs", engine.queue_arn(queue), {"RawMessageDelivery": "true"})
    return arn


async def receive_all(engine: Engine, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while batch := await engine.receive_message(
        name, max_number=10, attribute_names=["All"], message_attribute_names=["All"]
    ):
        out.extend(batch)
        await engine.delete_message_batch(
            name, [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return out


async def test_raw_batch_delivers_the_attributes_and_their_md5(engine: Engine) -> None:
    arn = await raw_queue(engine, "t", "q")
    for round_ in range(3):  # the first round takes the general path, later ones the shaped one
        entries = [
            {"Id": f"e{i}", "Message": json.dumps({"seq": i}), "MessageAttributes": envelope(10 * round_ + i)}
            for i in range(10)
        ]
        result = await engine.topics.publish_batch(arn, entries)
        assert result["Failed"] == []
        assert [s["Id"] for s in result["Successful"]] == [e["Id"] for e in entries]
        received = await receive_all(engine, "q")
        assert [m["Body"] for m in received] == [e["Message"] for e in entries]
        for m, e in zip(received, entries, strict=True):
            assert m["MessageAttributes"] == e["MessageAttributes"]
            assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(e["MessageAttributes"])
            assert m["MD5OfBody"] == md5_of_body(e["Message"])
    assert engine.topics.metrics()[arn]["delivered"] == 30
    assert engine.topics.queue_metrics()["q"] == 30


async def test_an_attribute_the_queue_refuses_fails_only_its_entry(engine: Engine) -> None:
    arn = await raw_queue(engine, "t", "q")
    bad = {**envelope(1), "AWS.reserved": {"DataType": "String", "StringValue": "x"}}  # SNS takes it, SQS not
    result = await engine.topics.publish_batch(
        arn,
        [
            {"Id": "a", "Message": "one", "MessageAttributes": envelope(0)},
            {"Id": "b", "Message": "two", "MessageAttributes": bad},
            {"Id": "c", "Message": "three", "MessageAttributes": envelope(2)},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["a", "c"]
    (failed,) = result["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == ("b", "InvalidParameter", True)
    assert failed["Message"].startswith(f"Invalid parameter: Message could not be delivered to {engine.queue_arn('q')}")
    received = await receive_all(engine, "q")
    assert [m["Body"] for m in received] == ["one", "three"]
    assert received[1]["MessageAttributes"] == envelope(2)


async def test_a_message_too_large_for_one_queue_fails_only_its_entry(engine: Engine) -> None:
    arn = await raw_queue(engine, "t", "small", MaximumMessageSize="1024")
    await engine.create_queue("roomy")
    await engine.topics.subscribe(arn, "sqs", engine.queue_arn("roomy"), {"RawMessageDelivery": "true"})
    entries = [{"Id": f"e{i}", "Message": ("x" * 2000 if i == 3 else f"m{i}")} for i in range(6)]
    result = await engine.topics.publish_batch(arn, entries)
    assert [s["Id"] for s in result["Successful"]] == ["e0", "e1", "e2", "e4", "e5"]
    assert [f["Id"] for f in result["Failed"]] == ["e3"]
    expected = ["m0", "m1", "m2", "m4", "m5"]
    assert [m["Body"] for m in await receive_all(engine, "small")] == expected
    assert [m["Body"] for m in await receive_all(engine, "roomy")] == expected
    assert engine.topics.queue_metrics() == {"small": 5, "roomy": 5}
    # the failed entry's message ids were given back: the next ones are in order
    result = await engine.topics.publish_batch(arn, [{"Id": "z", "Message": "after"}])
    assert [m["Body"] for m in await receive_all(engine, "roomy")] == ["after"]


async def test_fifo_batch_with_a_failing_entry_keeps_sequence_numbers_contiguous(engine: Engine) -> None:
    topics = engine.topics
    arn = await topics.create_topic("t.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    await engine.create_queue("q.fifo", {"FifoQueue": "true", "MaximumMessageSize": "1024"})
    await topics.subscribe(arn, "sqs", engine.queue_arn("q.fifo"), {"RawMessageDelivery": "true"})
    entries = [
        {"Id": "a", "Message": "one", "MessageGroupId": "g"},
        {"Id": "b", "Message": "x" * 2000, "MessageGroupId": "g"},
        {"Id": "c", "Message": "three", "MessageGroupId": "g"},
        {"Id": "d", "Message": "one", "MessageGroupId": "g"},  # a duplicate of a
    ]
    result = await topics.publish_batch(arn, entries)
    assert [f["Id"] for f in result["Failed"]] == ["b"]
    ok = {s["Id"]: s for s in result["Successful"]}
    assert list(ok) == ["a", "c", "d"]
    assert int(ok["c"]["SequenceNumber"]) == int(ok["a"]["SequenceNumber"]) + 1
    assert ok["d"]["MessageId"] == ok["a"]["MessageId"]
    assert [m["Body"] for m in await receive_all(engine, "q.fifo")] == ["one", "three"]
    assert topics.metrics()[arn]["duplicates"] == 1


async def test_batch_counts_each_subscription_as_publishing_alone_does(engine: Engine) -> None:
    topics = engine.topics
    arn = await raw_queue(engine, "t", "raw")
    await engine.create_queue("wrapped")
    await topics.subscribe(arn, "sqs", engine.queue_arn("wrapped"))
    await engine.create_queue("gone")
    await topics.subscribe(arn, "sqs", engine.queue_arn("gone"), {"RawMessageDelivery": "true"})
    await engine.delete_queue("gone")
    await engine.create_queue("filtered")
    await topics.subscribe(
        arn,
        "sqs",
        engine.queue_arn("filtered"),
        {"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"ce-type": ["wanted"]})},
    )
    entries = [{"Id": f"e{i}", "Message": f"m{i}", "MessageAttributes": envelope(i)} for i in range(4)]
    entries[2]["MessageAttributes"]["ce-type"] = {"DataType": "String", "StringValue": "wanted"}
    result = await topics.publish_batch(arn, entries)
    assert result["Failed"] == []
    assert [m["Body"] for m in await receive_all(engine, "raw")] == ["m0", "m1", "m2", "m3"]
    wrapped = await receive_all(engine, "wrapped")
    assert [json.loads(m["Body"])["Message"] for m in wrapped] == ["m0", "m1", "m2", "m3"]
    assert json.loads(wrapped[0]["Body"])["MessageAttributes"]["ce-id"] == {
        "Type": "String",
        "Value": envelope(0)["ce-id"]["StringValue"],
    }
    assert json.loads(wrapped[0]["Body"])["Timestamp"].endswith("Z")
    assert [m["Body"] for m in await receive_all(engine, "filtered")] == ["m2"]
    metrics = topics.metrics()[arn]
    assert (metrics["published"], metrics["delivered"], metrics["filtered_out"], metrics["undeliverable"]) == (
        4,
        9,
        3,
        4,
    )
