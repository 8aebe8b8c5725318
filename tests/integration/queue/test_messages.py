"""Messages on a real SQLite file: send, receive and delete, single and batched, with AWS SQS's rules."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import struct
from collections.abc import Awaitable, Mapping
from typing import Any

import pytest

from scte.queue import Engine, ManualClock, SqsError

SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"  # EngineConfig's default
MIB = 1_048_576
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def fails(code: str, call: Awaitable[Any]) -> SqsError:
    with pytest.raises(SqsError) as info:
        await call
    assert info.value.code == code, f"{info.value.code}: {info.value.message}"
    assert info.value.message
    return info.value


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """AWS's MD5OfMessageAttributes, written out here independently of the engine's code."""
    digest = hashlib.md5()

    def prefixed(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    for name in sorted(attributes):
        attribute = attributes[name]
        digest.update(prefixed(name.encode()) + prefixed(attribute["DataType"].encode()))
        if attribute["DataType"].startswith("Binary"):
            digest.update(b"\x02" + prefixed(bytes(attribute["BinaryValue"])))
        else:
            digest.update(b"\x01" + prefixed(attribute["StringValue"].encode()))
    return digest.hexdigest()


async def counts(engine: Engine, queue: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed)."""
    attributes = await engine.get_queue_attributes(
        queue,
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        int(attributes["ApproximateNumberOfMessagesDelayed"]),
    )


@pytest.fixture
async def queue(engine: Engine) -> str:
    await engine.create_queue("q")
    return "q"


# -- single messages ---------------------------------------------------------------------------------------


async def test_send_receive_delete(engine: Engine, queue: str, clock: ManualClock) -> None:
    body = "héllo wörld ✓ 🎉"
    sent = await engine.send_message(queue, body)
    assert UUID.fullmatch(sent["MessageId"])
    assert sent["MD5OfMessageBody"] == md5(body)
    assert "MD5OfMessageAttributes" not in sent
    assert "SequenceNumber" not in sent
    assert await counts(engine, queue) == (1, 0, 0)

    (message,) = await engine.receive_message(queue)
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5(body)
    assert message["ReceiptHandle"]
    assert "Attributes" not in message
    assert "MessageAttributes" not in message
    assert "MD5OfMessageAttributes" not in message
    assert await counts(engine, queue) == (0, 1, 0)
    assert await engine.receive_message(queue) == []

    await engine.delete_message(queue, message["ReceiptHandle"])
    assert await counts(engine, queue) == (0, 0, 0)
    clock.advance(31)
    assert await engine.receive_message(queue) == []


async def test_message_ids_are_distinct(engine: Engine, queue: str) -> None:
    ids = {(await engine.send_message(queue, "same"))["MessageId"] for _ in range(20)}
    assert len(ids) == 20


async def test_send_and_receive_on_a_missing_queue(engine: Engine) -> None:
    await fails("QueueDoesNotExist", engine.send_message("nope", "x"))
    await fails("QueueDoesNotExist", engine.send_message_batch("nope", [{"Id": "a", "MessageBody": "x"}]))
    await fails("QueueDoesNotExist", engine.receive_message("nope"))
    await fails("QueueDoesNotExist", engine.delete_message("nope", "scte1.1.1.1"))


# -- batches -----------------------------------------------------------------------------------------------


async def test_batch_of_ten(engine: Engine, queue: str) -> None:
    entries = [{"Id": f"m-{i}", "MessageBody": f"body {i}"} for i in range(10)]
    result = await engine.send_message_batch(queue, entries)
    assert result["Failed"] == []
    assert [r["Id"] for r in result["Successful"]] == [e["Id"] for e in entries]
    for entry, ok in zip(entries, result["Successful"], strict=True):
        assert ok["MD5OfMessageBody"] == md5(entry["MessageBody"])
        assert UUID.fullmatch(ok["MessageId"])
    assert len({r["MessageId"] for r in result["Successful"]}) == 10
    assert await counts(engine, queue) == (10, 0, 0)

    received = await engine.receive_message(queue, max_number=10)
    assert sorted(m["Body"] for m in received) == sorted(e["MessageBody"] for e in entries)
    by_body = {r["MD5OfMessageBody"]: r["MessageId"] for r in result["Successful"]}
    assert all(by_body[m["MD5OfBody"]] == m["MessageId"] for m in received)

    deleted = await engine.delete_message_batch(
        queue, [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    )
    assert deleted == {"Successful": [{"Id": f"d{i}"} for i in range(10)], "Failed": []}
    assert await counts(engine, queue) == (0, 0, 0)


async def test_batch_entries_fail_on_their_own(engine: Engine, queue: str) -> None:
    result = await engine.send_message_batch(
        queue,
        [
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "nul", "MessageBody": "bad\x00body"},
            {"Id": "empty", "MessageBody": ""},
            {"Id": "missing"},
            {"Id": "delay", "MessageBody": "x", "DelaySeconds": 901},
            {"Id": "attr", "MessageBody": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "x"}}},
            {"Id": "good2", "MessageBody": "also fine", "DelaySeconds": 900},
        ],
    )
    assert [r["Id"] for r in result["Successful"]] == ["good", "good2"]
    failed = {f["Id"]: f for f in result["Failed"]}
    assert set(failed) == {"nul", "empty", "missing", "delay", "attr"}
    assert failed["nul"]["Code"] == "InvalidMessageContents"
    assert failed["empty"]["Code"] == "MissingParameter"
    assert failed["missing"]["Code"] == "MissingParameter"
    assert failed["delay"]["Code"] == "InvalidParameterValue"
    assert failed["attr"]["Code"] == "InvalidParameterValue"
    for failure in failed.values():
        assert set(failure) == {"Id", "SenderFault", "Code", "Message"}
        assert failure["SenderFault"] is True
        assert failure["Message"]
    assert await counts(engine, queue) == (1, 0, 1)


async def test_batch_request_errors(engine: Engine, queue: str) -> None:
    await engine.send_message(queue, "existing")
    before = await counts(engine, queue)
    one = {"Id": "a", "MessageBody": "x"}
    error = await fails("EmptyBatchRequest", engine.send_message_batch(queue, []))
    assert error.query_code == "AWS.SimpleQueueService.EmptyBatchRequest"
    error = await fails(
        "TooManyEntriesInBatchRequest",
        engine.send_message_batch(queue, [{"Id": f"i{i}", "MessageBody": "x"} for i in range(11)]),
    )
    assert error.query_code == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    error = await fails("BatchEntryIdsNotDistinct", engine.send_message_batch(queue, [one, dict(one)]))
    assert error.query_code == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    for bad_id in ("has space", "dot.ted", "x" * 81, ""):
        error = await fails(
            "InvalidBatchEntryId", engine.send_message_batch(queue, [one, {"Id": bad_id, "MessageBody": "y"}])
        )
        assert error.query_code == "AWS.SimpleQueueService.InvalidBatchEntryId"
    await fails("MissingParameter", engine.send_message_batch(queue, [{"MessageBody": "no id"}]))
    # the same request rules for deleting
    await fails("EmptyBatchRequest", engine.delete_message_batch(queue, []))
    await fails(
        "TooManyEntriesInBatchRequest",
        engine.delete_message_batch(queue, [{"Id": f"i{i}", "ReceiptHandle": "h"} for i in range(11)]),
    )
    await fails(
        "BatchEntryIdsNotDistinct",
        engine.delete_message_batch(queue, [{"Id": "a", "ReceiptHandle": "h"}, {"Id": "a", "ReceiptHandle": "g"}]),
    )
    await fails("InvalidBatchEntryId", engine.delete_message_batch(queue, [{"Id": "a!", "ReceiptHandle": "h"}]))
    assert await counts(engine, queue) == before
    # the longest id is fine
    result = await engine.send_message_batch(queue, [{"Id": "x" * 80, "MessageBody": "ok"}])
    assert [r["Id"] for r in result["Successful"]] == ["x" * 80]


async def test_batch_request_too_long(engine: Engine, queue: str) -> None:
    half = MIB // 2
    await fails(
        "BatchRequestTooLong",
        engine.send_message_batch(
            queue, [{"Id": "a", "MessageBody": "a" * half}, {"Id": "b", "MessageBody": "b" * (half + 1)}]
        ),
    )
    attributes = {"k": {"DataType": "String", "StringValue": "v"}}  # 1 + 6 + 1 bytes count too
    error = await fails(
        "BatchRequestTooLong",
        engine.send_message_batch(
            queue,
            [
                {"Id": "a", "MessageBody": "a" * half},
                {"Id": "b", "MessageBody": "b" * (half - 7), "MessageAttributes": attributes},
            ],
        ),
    )
    assert error.query_code == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert await counts(engine, queue) == (0, 0, 0)
    result = await engine.send_message_batch(
        queue,
        [
            {"Id": "a", "MessageBody": "a" * half},
            {"Id": "b", "MessageBody": "b" * (half - 8), "MessageAttributes": attributes},
        ],
    )
    assert [r["Id"] for r in result["Successful"]] == ["a", "b"]
    assert await counts(engine, queue) == (2, 0, 0)


async def test_delete_batch_entries_fail_on_their_own(engine: Engine, queue: str) -> None:
    await engine.send_message(queue, "one")
    await engine.send_message(queue, "two")
    received = await engine.receive_message(queue, max_number=2)
    assert len(received) == 2
    result = await engine.delete_message_batch(
        queue,
        [
            {"Id": "ok", "ReceiptHandle": received[0]["ReceiptHandle"]},
            {"Id": "junk", "ReceiptHandle": "not-a-handle"},
            {"Id": "none"},
        ],
    )
    assert result["Successful"] == [{"Id": "ok"}]
    failed = {f["Id"]: f for f in result["Failed"]}
    assert failed["junk"]["Code"] == "ReceiptHandleIsInvalid"
    assert failed["junk"]["SenderFault"] is True
    assert failed["none"]["Code"] == "MissingParameter"
    assert await counts(engine, queue) == (0, 1, 0)


# -- message attributes ------------------------------------------------------------------------------------

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "text": {"DataType": "String", "StringValue": "hello ✓"},
    "number": {"DataType": "Number", "StringValue": "-12.50"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "doc": {"DataType": "String.json", "StringValue": '{"a": [1, 2]}'},
    "count": {"DataType": "Number.int", "StringValue": "42"},
    "packed": {"DataType": "Binary.gz", "BinaryValue": gzip.compress(b"payload", mtime=0)},
}


async def test_message_attributes_round_trip(engine: Engine, queue: str) -> None:
    sent = await engine.send_message(queue, "with attributes", message_attributes=ATTRIBUTES)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)
    (message,) = await engine.receive_message(queue, message_attribute_names=["All"])
    assert message["MessageAttributes"] == ATTRIBUTES
    assert isinstance(message["MessageAttributes"]["blob"]["BinaryValue"], bytes)
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]

    batch = await engine.send_message_batch(
        queue, [{"Id": "a", "MessageBody": "b", "MessageAttributes": ATTRIBUTES}, {"Id": "plain", "MessageBody": "c"}]
    )
    with_attributes, plain = batch["Successful"]
    assert with_attributes["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert "MD5OfMessageAttributes" not in plain


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["color"], {"color"}),
        (["color", "size", "absent"], {"color", "size"}),
        # AWS: `bar.*` returns the attributes whose names start with `bar` (so `bar` itself too).
        (["color.*"], {"color", "color.dark", "color.light"}),
        (["All"], {"color", "color.dark", "color.light", "size"}),
        ([".*"], {"color", "color.dark", "color.light", "size"}),
        (["absent"], set()),
        ([], set()),
    ],
)
async def test_message_attribute_selection(engine: Engine, queue: str, names: list[str], expected: set[str]) -> None:
    attributes = {
        "color": {"DataType": "String", "StringValue": "red"},
        "color.dark": {"DataType": "String", "StringValue": "maroon"},
        "color.light": {"DataType": "Binary", "BinaryValue": b"\x01"},
        "size": {"DataType": "Number", "StringValue": "3"},
    }
    await engine.send_message(queue, "x", message_attributes=attributes)
    (message,) = await engine.receive_message(queue, message_attribute_names=names)
    if expected:
        selected = {name: attributes[name] for name in expected}
        assert message["MessageAttributes"] == selected
        assert message["MD5OfMessageAttributes"] == md5_of_attributes(selected)
    else:
        assert "MessageAttributes" not in message
        assert "MD5OfMessageAttributes" not in message


async def test_invalid_message_attributes_are_refused(engine: Engine, queue: str) -> None:
    too_many = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}
    await fails("InvalidParameterValue", engine.send_message(queue, "x", message_attributes=too_many))
    for name in ("AWS.thing", "Amazon.thing", ".lead", "trail.", "dou..ble"):
        await fails(
            "InvalidParameterValue",
            engine.send_message(queue, "x", message_attributes={name: {"DataType": "String", "StringValue": "v"}}),
        )
    for value in (
        {"DataType": "Number", "StringValue": "twelve"},
        {"DataType": "String", "StringValue": ""},
        {"DataType": "Binary", "BinaryValue": b""},
        {"DataType": "String", "StringValue": "bad\x00"},
        {"DataType": "Binary", "StringValue": "not bytes"},
    ):
        await fails("InvalidParameterValue", engine.send_message(queue, "x", message_attributes={"a": value}))
    # exactly ten is fine
    ten = {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(10)}
    await engine.send_message(queue, "x", message_attributes=ten)
    assert await counts(engine, queue) == (1, 0, 0)


# -- system attributes -------------------------------------------------------------------------------------


async def test_system_attributes(engine: Engine, queue: str, clock: ManualClock) -> None:
    sent_at = int(clock.now() * 1000)
    await engine.send_message(queue, "x")
    clock.advance(5)
    (first,) = await engine.receive_message(queue, attribute_names=["All"], visibility_timeout=0)
    assert first["Attributes"] == {
        "SenderId": SENDER_ID,
        "SentTimestamp": str(sent_at),
        "ApproximateReceiveCount": "1",
        "ApproximateFirstReceiveTimestamp": str(sent_at + 5000),
    }
    clock.advance(7)
    (second,) = await engine.receive_message(queue, message_system_attribute_names=["All"], visibility_timeout=0)
    assert second["Attributes"] == {**first["Attributes"], "ApproximateReceiveCount": "2"}
    clock.advance(1)
    (third,) = await engine.receive_message(queue, attribute_names=["ApproximateReceiveCount"])
    assert third["Attributes"] == {"ApproximateReceiveCount": "3"}


async def test_system_attribute_selection(engine: Engine, queue: str, clock: ManualClock) -> None:
    sent_at = int(clock.now() * 1000)
    await engine.send_message(queue, "x")

    async def receive(**selection: list[str]) -> dict[str, str] | None:
        (message,) = await engine.receive_message(queue, visibility_timeout=0, **selection)
        return message.get("Attributes")

    assert await receive() is None
    assert await receive(attribute_names=["SentTimestamp"]) == {"SentTimestamp": str(sent_at)}
    assert await receive(message_system_attribute_names=["SenderId"]) == {"SenderId": SENDER_ID}
    assert await receive(attribute_names=["SenderId"], message_system_attribute_names=["SentTimestamp"]) == {
        "SenderId": SENDER_ID,
        "SentTimestamp": str(sent_at),
    }
    # attributes a standard message does not have are left out
    assert await receive(message_system_attribute_names=["SequenceNumber", "MessageDeduplicationId"]) is None
    before = await counts(engine, queue)
    await fails("InvalidAttributeName", engine.receive_message(queue, attribute_names=["Bogus"]))
    await fails("InvalidAttributeName", engine.receive_message(queue, message_system_attribute_names=["Nope"]))
    assert await counts(engine, queue) == before
    assert await receive(attribute_names=["ApproximateReceiveCount"]) == {"ApproximateReceiveCount": "6"}


async def test_aws_trace_header(engine: Engine, queue: str) -> None:
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    sent = await engine.send_message(queue, "traced", message_system_attributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_attributes(system)
    assert "MD5OfMessageAttributes" not in sent
    (message,) = await engine.receive_message(queue, message_system_attribute_names=["AWSTraceHeader"])
    assert message["Attributes"] == {"AWSTraceHeader": trace}
    assert "MessageAttributes" not in message

    await engine.send_message(queue, "untraced")
    (message,) = await engine.receive_message(queue, attribute_names=["All"])
    assert "AWSTraceHeader" not in message["Attributes"]

    batch = await engine.send_message_batch(queue, [{"Id": "t", "MessageBody": "b", "MessageSystemAttributes": system}])
    assert batch["Successful"][0]["MD5OfMessageSystemAttributes"] == sent["MD5OfMessageSystemAttributes"]

    before = await counts(engine, queue)
    await fails(
        "InvalidParameterValue",
        engine.send_message(
            queue, "x", message_system_attributes={"Other": {"DataType": "String", "StringValue": "v"}}
        ),
    )
    await fails(
        "InvalidParameterValue",
        engine.send_message(
            queue, "x", message_system_attributes={"AWSTraceHeader": {"DataType": "Binary", "BinaryValue": b"v"}}
        ),
    )
    assert await counts(engine, queue) == before


# -- bodies and sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["\x00", "a\x08b", "\x0b", "\x1f", "x\ud800", "\udfff", "\ufffe", "\uffff"])
async def test_invalid_body_characters(engine: Engine, queue: str, body: str) -> None:
    await fails("InvalidMessageContents", engine.send_message(queue, body))
    result = await engine.send_message_batch(queue, [{"Id": "a", "MessageBody": body}])
    assert result["Successful"] == []
    assert result["Failed"][0]["Code"] == "InvalidMessageContents"
    assert await counts(engine, queue) == (0, 0, 0)


@pytest.mark.parametrize(
    "body", ["tab\there", "lines\nand\r\nreturns", " ", "🎉 emoji", "\ud7ff\ue000\ufffd", "\U00010000\U0010ffff"]
)
async def test_allowed_body_characters(engine: Engine, queue: str, body: str) -> None:
    sent = await engine.send_message(queue, body)
    assert sent["MD5OfMessageBody"] == md5(body)
    (message,) = await engine.receive_message(queue)
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5(body)


async def test_missing_body(engine: Engine, queue: str) -> None:
    await fails("MissingParameter", engine.send_message(queue, ""))
    await fails("MissingParameter", engine.send_message(queue, None))  # type: ignore[arg-type]
    await fails("InvalidParameterValue", engine.send_message(queue, 42))  # type: ignore[arg-type]
    assert await counts(engine, queue) == (0, 0, 0)


async def test_maximum_message_size_default(engine: Engine, queue: str) -> None:
    await engine.send_message(queue, "a" * MIB)
    await engine.send_message(queue, "é" * (MIB // 2))  # UTF-8 bytes are counted, not characters
    await fails("InvalidParameterValue", engine.send_message(queue, "a" * (MIB + 1)))
    await fails("InvalidParameterValue", engine.send_message(queue, "é" * (MIB // 2) + "a"))
    assert await counts(engine, queue) == (2, 0, 0)
    received = await engine.receive_message(queue, max_number=10)
    assert sorted(len(m["Body"].encode()) for m in received) == [MIB, MIB]


async def test_maximum_message_size_counts_attributes(engine: Engine) -> None:
    await engine.create_queue("small", {"MaximumMessageSize": "1024"})
    await engine.send_message("small", "a" * 1024)
    await fails("InvalidParameterValue", engine.send_message("small", "a" * 1025))
    string_attribute = {"k": {"DataType": "String", "StringValue": "v"}}  # 1 + 6 + 1 = 8 bytes
    await engine.send_message("small", "a" * 1016, message_attributes=string_attribute)
    await fails("InvalidParameterValue", engine.send_message("small", "a" * 1017, message_attributes=string_attribute))
    binary_attribute = {"bin": {"DataType": "Binary.gz", "BinaryValue": b"x" * 10}}  # 3 + 9 + 10 = 22 bytes
    await engine.send_message("small", "a" * 1002, message_attributes=binary_attribute)
    await fails("InvalidParameterValue", engine.send_message("small", "a" * 1003, message_attributes=binary_attribute))
    result = await engine.send_message_batch(
        "small", [{"Id": "fits", "MessageBody": "a" * 1024}, {"Id": "big", "MessageBody": "a" * 1025}]
    )
    assert [r["Id"] for r in result["Successful"]] == ["fits"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [
        ("big", "InvalidParameterValue", True)
    ]
    assert await counts(engine, "small") == (4, 0, 0)
    # raising the limit lets the larger message in
    await engine.set_queue_attributes("small", {"MaximumMessageSize": "2048"})
    await engine.send_message("small", "a" * 1025)
    assert await counts(engine, "small") == (5, 0, 0)


# -- receive parameters ------------------------------------------------------------------------------------


async def test_receive_max_number(engine: Engine, queue: str) -> None:
    for i in range(12):
        await engine.send_message(queue, f"m{i}")
    before = await counts(engine, queue)
    for bad in (0, 11, -1, "x"):
        await fails("InvalidParameterValue", engine.receive_message(queue, max_number=bad))  # type: ignore[arg-type]
    assert await counts(engine, queue) == before
    assert len(await engine.receive_message(queue)) == 1
    assert len(await engine.receive_message(queue, max_number=1)) == 1
    assert len(await engine.receive_message(queue, max_number=10)) == 10
    assert await engine.receive_message(queue, max_number=10) == []
    assert await counts(engine, queue) == (0, 12, 0)


async def test_receive_visibility_override(engine: Engine, queue: str, clock: ManualClock) -> None:
    await engine.send_message(queue, "x")
    for bad in (-1, 43_201):
        await fails("InvalidParameterValue", engine.receive_message(queue, visibility_timeout=bad))
    assert await counts(engine, queue) == (1, 0, 0)
    assert len(await engine.receive_message(queue, visibility_timeout=0)) == 1
    assert await counts(engine, queue) == (1, 0, 0)
    assert len(await engine.receive_message(queue, visibility_timeout=43_200)) == 1
    clock.advance(43_199)
    assert await engine.receive_message(queue) == []
    clock.advance(1)
    assert len(await engine.receive_message(queue, visibility_timeout=5)) == 1
    clock.advance(4)
    assert await engine.receive_message(queue) == []
    clock.advance(1)
    assert len(await engine.receive_message(queue)) == 1


async def test_receive_wait_time(engine: Engine, queue: str, clock: ManualClock) -> None:
    for bad in (-1, 21):
        await fails("InvalidParameterValue", engine.receive_message(queue, wait_time_seconds=bad))
    assert await engine.receive_message(queue, wait_time_seconds=0) == []
    await engine.send_message(queue, "ready")
    assert len(await engine.receive_message(queue, wait_time_seconds=20)) == 1  # returns at once

    # an empty long poll ends when the clock passes its wait time
    poll = asyncio.ensure_future(engine.receive_message(queue, wait_time_seconds=20))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not poll.done()
    clock.advance(20)
    assert await asyncio.wait_for(poll, 5) == []

    # a message sent during a long poll is returned by it
    poll = asyncio.ensure_future(engine.receive_message(queue, wait_time_seconds=20))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not poll.done()
    await engine.send_message(queue, "late")
    (message,) = await asyncio.wait_for(poll, 5)
    assert message["Body"] == "late"


# -- receipt handles ---------------------------------------------------------------------------------------


async def test_malformed_receipt_handles(engine: Engine, queue: str) -> None:
    await engine.send_message(queue, "x")
    (message,) = await engine.receive_message(queue)
    for handle in ("garbage", message["ReceiptHandle"] + "0", "scte1.1.1.0", message["ReceiptHandle"][:-3] + "xyz"):
        error = await fails("ReceiptHandleIsInvalid", engine.delete_message(queue, handle))
        assert error.query_code == "ReceiptHandleIsInvalid"
    await fails("MissingParameter", engine.delete_message(queue, ""))
    assert await counts(engine, queue) == (0, 1, 0)
    await engine.delete_message(queue, message["ReceiptHandle"])
    assert await counts(engine, queue) == (0, 0, 0)


async def test_receipt_handle_from_another_queue(engine: Engine, queue: str) -> None:
    await engine.create_queue("other")
    await engine.send_message(queue, "mine")
    await engine.send_message("other", "theirs")
    (message,) = await engine.receive_message(queue)
    await fails("ReceiptHandleIsInvalid", engine.delete_message("other", message["ReceiptHandle"]))
    result = await engine.delete_message_batch("other", [{"Id": "a", "ReceiptHandle": message["ReceiptHandle"]}])
    assert result["Successful"] == []
    assert result["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    assert await counts(engine, queue) == (0, 1, 0)
    assert await counts(engine, "other") == (1, 0, 0)


async def test_delete_is_idempotent(engine: Engine, queue: str) -> None:
    await engine.send_message(queue, "x")
    await engine.send_message(queue, "y")
    (message,) = await engine.receive_message(queue)
    await engine.delete_message(queue, message["ReceiptHandle"])
    await engine.delete_message(queue, message["ReceiptHandle"])
    result = await engine.delete_message_batch(queue, [{"Id": "again", "ReceiptHandle": message["ReceiptHandle"]}])
    assert result == {"Successful": [{"Id": "again"}], "Failed": []}
    assert await counts(engine, queue) == (1, 0, 0)


async def test_each_receive_gives_a_fresh_handle(engine: Engine, queue: str, clock: ManualClock) -> None:
    await engine.send_message(queue, "x")
    handles = []
    for _ in range(3):
        (message,) = await engine.receive_message(queue, visibility_timeout=10)
        handles.append(message["ReceiptHandle"])
        clock.advance(10)
    assert len(set(handles)) == 3
    (message,) = await engine.receive_message(queue, visibility_timeout=10)
    latest = message["ReceiptHandle"]
    assert latest not in handles
    # On a standard queue any handle of the message deletes it, an outdated one too (as AWS does);
    # deleting again with the latest one succeeds: delete is idempotent.
    await engine.delete_message(queue, handles[0])
    assert await counts(engine, queue) == (0, 0, 0)
    await engine.delete_message(queue, latest)
    clock.advance(60)
    assert await engine.receive_message(queue) == []


# -- nothing changes on a bad call --------------------------------------------------------------------------


async def test_bad_calls_change_nothing(engine: Engine, queue: str, clock: ManualClock) -> None:
    await engine.send_message(queue, "visible")
    await engine.send_message(queue, "delayed", delay_seconds=60)
    await engine.send_message(queue, "taken")
    (taken,) = await engine.receive_message(queue)
    before = await counts(engine, queue)
    assert before == (1, 1, 1)
    calls = [
        ("InvalidMessageContents", engine.send_message(queue, "\x00")),
        ("MissingParameter", engine.send_message(queue, "")),
        ("InvalidParameterValue", engine.send_message(queue, "x", delay_seconds=901)),
        ("InvalidParameterValue", engine.send_message(queue, "x", delay_seconds=-1)),
        ("InvalidParameterValue", engine.send_message(queue, "a" * (MIB + 1))),
        ("EmptyBatchRequest", engine.send_message_batch(queue, [])),
        ("BatchRequestTooLong", engine.send_message_batch(queue, [{"Id": "a", "MessageBody": "a" * (MIB + 1)}])),
        ("InvalidParameterValue", engine.receive_message(queue, max_number=11)),
        ("InvalidParameterValue", engine.receive_message(queue, visibility_timeout=-5)),
        ("InvalidParameterValue", engine.receive_message(queue, wait_time_seconds=30)),
        ("InvalidAttributeName", engine.receive_message(queue, attribute_names=["Nope"])),
        ("ReceiptHandleIsInvalid", engine.delete_message(queue, "junk")),
        ("MissingParameter", engine.delete_message(queue, "")),
        ("InvalidBatchEntryId", engine.delete_message_batch(queue, [{"Id": "?", "ReceiptHandle": "h"}])),
    ]
    for code, call in calls:
        await fails(code, call)
    assert await counts(engine, queue) == before
    # the in-flight message still deletes with its handle
    await engine.delete_message(queue, taken["ReceiptHandle"])
    assert await counts(engine, queue) == (1, 0, 1)
    clock.advance(60)
    remaining = sorted({"visible", "taken", "delayed"} - {taken["Body"]})
    assert sorted(m["Body"] for m in await engine.receive_message(queue, max_number=10)) == remaining


async def test_messages_survive_a_restart(engine: Engine, queue: str, clock: ManualClock, tmp_path: Any) -> None:
    from scte.queue import EngineConfig

    sent = await engine.send_message(queue, "durable", message_attributes=ATTRIBUTES)
    await engine.close()
    async with Engine(EngineConfig(path=tmp_path / "broker.db", clock=clock)) as reopened:
        (message,) = await reopened.receive_message(queue, message_attribute_names=["All"], attribute_names=["All"])
        assert message["MessageId"] == sent["MessageId"]
        assert message["Body"] == "durable"
        assert message["MessageAttributes"] == ATTRIBUTES
        assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"
        await reopened.delete_message(queue, message["ReceiptHandle"])
        assert await counts(reopened, queue) == (0, 0, 0)
