"""Topics on a real engine and SQLite file: fan-out, filtering, FIFO, durability, all-or-none, errors."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock
from scte.queue.topics import SnsError


async def receive(engine: Engine, name: str, n: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    return await engine.receive_message(
        name, max_number=n, attribute_names=["All"], message_attribute_names=["All"], **kwargs
    )


async def drain(engine: Engine, name: str) -> list[dict[str, Any]]:
    """Every message of a queue, deleted as read."""
    out: list[dict[str, Any]] = []
    while batch := await receive(engine, name):
        out.extend(batch)
        for m in batch:
            await engine.delete_message(name, m["ReceiptHandle"])
    return out


def messages_of(received: list[dict[str, Any]]) -> list[str]:
    return [json.loads(m["Body"])["Message"] for m in received]


async def topic_with_queues(engine: Engine, topic: str, *queues: str, **sub_attrs: Any) -> str:
    arn = await engine.topics.create_topic(topic)
    for q in queues:
        await engine.create_queue(q)
        await engine.topics.subscribe(arn, "sqs", engine.queue_arn(q), sub_attrs or None)
    return arn


# -- fan-out and delivery formats --------------------------------------------------------------------


async def test_fan_out_to_every_subscribed_queue_as_an_envelope(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "orders", "billing", "mail", "search")
    result = await engine.topics.publish(
        arn,
        "order 42 paid",
        subject="paid",
        message_attributes={
            "type": {"DataType": "String", "StringValue": "order.paid"},
            "amount": {"DataType": "Number", "StringValue": "12.5"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    for queue in ("billing", "mail", "search"):
        (message,) = await receive(engine, queue)
        envelope = json.loads(message["Body"])
        assert envelope["Type"] == "Notification"
        assert envelope["MessageId"] == result["MessageId"]
        assert envelope["TopicArn"] == arn
        assert envelope["Subject"] == "paid"
        assert envelope["Message"] == "order 42 paid"
        assert envelope["Timestamp"].endswith("Z") and len(envelope["Timestamp"]) == 24
        assert envelope["SignatureVersion"] == "1"
        assert envelope["Signature"] and envelope["SigningCertURL"]
        assert "Action=Unsubscribe" in envelope["UnsubscribeURL"]
        assert envelope["MessageAttributes"] == {
            "type": {"Type": "String", "Value": "order.paid"},
            "amount": {"Type": "Number", "Value": "12.5"},
            "blob": {"Type": "Binary", "Value": "AAE="},
        }
        assert "MessageAttributes" not in message  # enveloped: the attributes travel in the body
    metrics = engine.topics.metrics()[arn]
    assert metrics["published"] == 1 and metrics["delivered"] == 3


async def test_envelope_without_subject_or_attributes_omits_them(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    await engine.topics.publish(arn, "plain")
    (message,) = await receive(engine, "q")
    envelope = json.loads(message["Body"])
    assert "Subject" not in envelope and "MessageAttributes" not in envelope


async def test_raw_delivery_passes_body_and_attributes_as_sent(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "raw", RawMessageDelivery="true")
    attrs = {
        "kind": {"DataType": "String", "StringValue": "a"},
        "tags": {"DataType": "String.Array", "StringValue": '["x", "y"]'},
        "n": {"DataType": "Number", "StringValue": "7"},
    }
    await engine.topics.publish(arn, '{"id": 1}', message_attributes=attrs)
    (message,) = await receive(engine, "raw")
    assert message["Body"] == '{"id": 1}'
    assert message["MessageAttributes"] == attrs


async def test_message_structure_json_picks_the_sqs_message(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    structured = json.dumps({"default": "for everyone", "sqs": "for queues"})
    await engine.topics.publish(arn, structured, message_structure="json")
    await engine.topics.publish(arn, json.dumps({"default": "fallback", "email": "e"}), message_structure="json")
    assert messages_of(await drain(engine, "q")) == ["for queues", "fallback"]
    with pytest.raises(SnsError) as caught:
        await engine.topics.publish(arn, json.dumps({"email": "e"}), message_structure="json")
    assert caught.value.code == "InvalidParameter"
    assert caught.value.message == "Message does not contain sqs or default keys."


# -- filter policies -----------------------------------------------------------------------------------


async def test_filter_policies_route_by_attributes_and_by_body(engine: Engine) -> None:
    topics = engine.topics
    arn = await topics.create_topic("events")
    for q in ("exams", "courses", "big_orders", "everything"):
        await engine.create_queue(q)
    await topics.subscribe(
        arn, "sqs", engine.queue_arn("exams"), {"FilterPolicy": json.dumps({"type": [{"prefix": "exam."}]})}
    )
    await topics.subscribe(
        arn,
        "sqs",
        engine.queue_arn("courses"),
        {"FilterPolicy": json.dumps({"type": ["course.completed"], "units": [{"numeric": [">=", 2]}]})},
    )
    await topics.subscribe(
        arn,
        "sqs",
        engine.queue_arn("big_orders"),
        {
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps({"order": {"total": [{"numeric": [">", 100]}], "state": ["paid"]}}),
        },
    )
    await topics.subscribe(arn, "sqs", engine.queue_arn("everything"))

    def attrs(kind: str, **numbers: str) -> dict[str, dict[str, str]]:
        out = {"type": {"DataType": "String", "StringValue": kind}}
        out.update({k: {"DataType": "Number", "StringValue": v} for k, v in numbers.items()})
        return out

    await topics.publish(arn, "e1", message_attributes=attrs("exam.passed"))
    await topics.publish(arn, "c1", message_attributes=attrs("course.completed", units="3"))
    await topics.publish(arn, "c2", message_attributes=attrs("course.completed", units="1"))
    await topics.publish(arn, json.dumps({"order": {"total": 250, "state": "paid"}}))
    await topics.publish(arn, json.dumps({"order": {"total": 20, "state": "paid"}}))

    assert messages_of(await drain(engine, "exams")) == ["e1"]
    assert messages_of(await drain(engine, "courses")) == ["c1"]
    assert [json.loads(m)["order"]["total"] for m in messages_of(await drain(engine, "big_orders"))] == [250]
    assert len(await drain(engine, "everything")) == 5
    metrics = topics.metrics()[arn]
    assert metrics["published"] == 5
    assert metrics["filtered_out"] == 4 + 4 + 4  # exams, courses, big_orders each missed four
    assert metrics["delivered"] == 5 + 1 + 1 + 1


async def test_filter_policy_can_be_changed_and_removed(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    ((sub,), _) = await engine.topics.list_subscriptions_by_topic(arn)
    sub_arn = sub["SubscriptionArn"]
    await engine.topics.set_subscription_attributes(sub_arn, "FilterPolicy", '{"k": ["v"]}')
    await engine.topics.publish(arn, "dropped")
    await engine.topics.set_subscription_attributes(sub_arn, "FilterPolicy", "")
    await engine.topics.publish(arn, "kept")
    assert messages_of(await drain(engine, "q")) == ["kept"]
    attributes = await engine.topics.get_subscription_attributes(sub_arn)
    assert "FilterPolicy" not in attributes and "FilterPolicyScope" not in attributes


async def test_scope_change_revalidates_the_policy(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    ((sub,), _) = await engine.topics.list_subscriptions_by_topic(arn)
    sub_arn = sub["SubscriptionArn"]
    await engine.topics.set_subscription_attributes(sub_arn, "FilterPolicyScope", "MessageBody")
    await engine.topics.set_subscription_attributes(sub_arn, "FilterPolicy", '{"a": {"b": ["c"]}}')
    with pytest.raises(SnsError, match="does not support nested filter policy"):
        await engine.topics.set_subscription_attributes(sub_arn, "FilterPolicyScope", "MessageAttributes")
    assert (await engine.topics.get_subscription_attributes(sub_arn))["FilterPolicyScope"] == "MessageBody"


# -- FIFO ------------------------------------------------------------------------------------------------


async def test_fifo_topic_to_fifo_queues_keeps_group_order_and_deduplicates(engine: Engine, clock: ManualClock) -> None:
    topics = engine.topics
    arn = await topics.create_topic("ledger.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    for q in ("a.fifo", "b.fifo"):
        await engine.create_queue(q, {"FifoQueue": "true"})
        await topics.subscribe(arn, "sqs", engine.queue_arn(q), {"RawMessageDelivery": "true"})
    await engine.create_queue("std")
    await topics.subscribe(arn, "sqs", engine.queue_arn("std"))

    sequences = []
    for i in range(6):
        result = await topics.publish(arn, f"m{i}", message_group_id=f"g{i % 2}")
        sequences.append(int(result["SequenceNumber"]))
    assert sequences == sorted(sequences) and len(set(sequences)) == 6
    first = await topics.publish(arn, "explicit", message_group_id="g0", message_deduplication_id="d-1")
    again = await topics.publish(arn, "explicit, retried", message_group_id="g0", message_deduplication_id="d-1")
    repeat = await topics.publish(arn, "m0", message_group_id="g0")  # same content: deduplicated
    assert again == first
    assert repeat["MessageId"] != first["MessageId"] and int(repeat["SequenceNumber"]) == sequences[0]

    for q in ("a.fifo", "b.fifo"):
        got = await drain(engine, q)
        by_group: dict[str, list[str]] = {}
        for m in got:
            by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
        assert by_group == {"g0": ["m0", "m2", "m4", "explicit"], "g1": ["m1", "m3", "m5"]}
        dedup_ids = {m["Body"]: m["Attributes"]["MessageDeduplicationId"] for m in got}
        assert dedup_ids["explicit"] == "d-1"
    std = await drain(engine, "std")
    assert len(std) == 7
    assert all("SequenceNumber" in json.loads(m["Body"]) for m in std)
    assert engine.topics.metrics()[arn]["duplicates"] == 2

    clock.advance(301)  # the five-minute deduplication window has passed: a new message
    later = await topics.publish(arn, "explicit", message_group_id="g0", message_deduplication_id="d-1")
    assert later["MessageId"] != first["MessageId"]
    assert [m["Body"] for m in await drain(engine, "a.fifo")] == ["explicit"]


async def test_fifo_topic_requires_group_and_dedup(engine: Engine) -> None:
    topics = engine.topics
    arn = await topics.create_topic("t.fifo", {"FifoTopic": "true"})
    with pytest.raises(SnsError, match="The request must contain the parameter MessageGroupId"):
        await topics.publish(arn, "x")
    with pytest.raises(SnsError, match="ContentBasedDeduplication enabled or MessageDeduplicationId"):
        await topics.publish(arn, "x", message_group_id="g")
    standard = await topics.create_topic("std")
    with pytest.raises(SnsError, match="not valid for this topic type"):
        await topics.publish(standard, "x", message_deduplication_id="d")
    await topics.publish(standard, "x", message_group_id="g")  # fair queues: allowed on standard topics
    await engine.create_queue("q.fifo", {"FifoQueue": "true"})
    with pytest.raises(SnsError) as caught:
        await topics.subscribe(standard, "sqs", engine.queue_arn("q.fifo"))
    assert caught.value.message.endswith("FIFO SQS Queues can not be subscribed to standard SNS topics")


# -- all or none -----------------------------------------------------------------------------------------


async def test_publish_is_all_or_none_across_queues(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "roomy", "other")
    await engine.create_queue("small", {"MaximumMessageSize": "1024"})
    await engine.topics.subscribe(arn, "sqs", engine.queue_arn("small"), {"RawMessageDelivery": "true"})
    with pytest.raises(SnsError) as caught:
        await engine.topics.publish(arn, "x" * 2000)
    assert caught.value.code == "InvalidParameter"
    assert "small" in caught.value.message
    for q in ("roomy", "other", "small"):
        assert await receive(engine, q) == []
    await engine.topics.publish(arn, "fits")
    for q in ("roomy", "other", "small"):
        assert len(await receive(engine, q)) == 1


async def test_publish_batch_entries_are_each_all_or_none(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "roomy")
    await engine.create_queue("small", {"MaximumMessageSize": "1024"})
    await engine.topics.subscribe(arn, "sqs", engine.queue_arn("small"), {"RawMessageDelivery": "true"})
    result = await engine.topics.publish_batch(
        arn,
        [
            {"Id": "ok1", "Message": "one"},
            {"Id": "big", "Message": "x" * 2000},
            {"Id": "bad", "Message": ""},
            {"Id": "ok2", "Message": "two", "Subject": "s"},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["ok1", "ok2"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [
        ("big", "InvalidParameter", True),
        ("bad", "InvalidParameter", True),
    ]
    assert messages_of(await drain(engine, "roomy")) == ["one", "two"]
    assert [m["Body"] for m in await drain(engine, "small")] == ["one", "two"]


# -- subscriptions ---------------------------------------------------------------------------------------


async def test_unsubscribe_stops_delivery_and_is_idempotent(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "a", "b")
    subs, _ = await engine.topics.list_subscriptions_by_topic(arn)
    a_sub = next(s["SubscriptionArn"] for s in subs if s["Endpoint"].endswith(":a"))
    await engine.topics.unsubscribe(a_sub)
    await engine.topics.unsubscribe(a_sub)
    await engine.topics.publish(arn, "after")
    assert await receive(engine, "a") == []
    assert messages_of(await receive(engine, "b")) == ["after"]
    attrs = await engine.topics.get_topic_attributes(arn)
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsDeleted"]) == ("1", "1")


async def test_subscribe_is_idempotent_and_unknown_queues_are_accepted(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    endpoint = engine.queue_arn("q")
    first = await engine.topics.subscribe(arn, "sqs", endpoint)
    assert await engine.topics.subscribe(arn, "sqs", endpoint) == first
    missing = await engine.topics.subscribe(arn, "sqs", engine.queue_arn("later"))
    await engine.topics.publish(arn, "before the queue exists")
    await engine.create_queue("later")
    await engine.topics.publish(arn, "after")
    assert messages_of(await receive(engine, "later")) == ["after"]
    assert engine.topics.metrics()[arn]["undeliverable"] == 1
    assert missing.startswith(arn + ":")


async def test_missing_queue_goes_to_the_subscription_dead_letter_queue(engine: Engine) -> None:
    arn = await engine.topics.create_topic("t")
    await engine.create_queue("dlq")
    policy = json.dumps({"deadLetterTargetArn": engine.queue_arn("dlq")})
    await engine.topics.subscribe(arn, "sqs", engine.queue_arn("gone"), {"RedrivePolicy": policy})
    await engine.topics.publish(arn, "lost?")
    assert messages_of(await receive(engine, "dlq")) == ["lost?"]


async def test_delete_topic_removes_its_subscriptions(engine: Engine) -> None:
    arn = await topic_with_queues(engine, "t", "q")
    other = await topic_with_queues(engine, "u", "r")
    await engine.topics.delete_topic(arn)
    await engine.topics.delete_topic(arn)  # idempotent
    subs, _ = await engine.topics.list_subscriptions()
    assert [s["TopicArn"] for s in subs] == [other]
    assert await engine.topics.list_topics() == ([other], None)
    with pytest.raises(SnsError) as caught:
        await engine.topics.publish(arn, "x")
    assert (caught.value.code, caught.value.message, caught.value.status) == ("NotFound", "Topic does not exist", 404)


async def test_topic_attributes_and_tags(engine: Engine) -> None:
    topics = engine.topics
    arn = await topics.create_topic("t", {"DisplayName": "Orders"}, {"team": "billing"})
    assert await topics.create_topic("t") == arn
    attrs = await topics.get_topic_attributes(arn)
    assert attrs["DisplayName"] == "Orders" and attrs["TopicArn"] == arn and attrs["Owner"] == engine.account_id
    assert "FifoTopic" not in attrs and json.loads(attrs["Policy"])["Statement"]
    await topics.set_topic_attributes(arn, "Policy", json.dumps({"foo": "bar"}))
    assert (await topics.get_topic_attributes(arn))["Policy"] == '{"foo":"bar"}'
    with pytest.raises(SnsError, match="different attributes"):
        await topics.create_topic("t", {"DisplayName": "Other"})
    await topics.tag_resource(arn, {"env": "test"})
    await topics.untag_resource(arn, ["team", "absent"])
    assert await topics.list_tags_for_resource(arn) == {"env": "test"}
    with pytest.raises(SnsError) as caught:
        await topics.tag_resource(arn, {f"k{i}": "v" for i in range(50)})
    assert caught.value.code == "TagLimitExceeded"
    with pytest.raises(SnsError) as caught:
        await topics.list_tags_for_resource("not-a-topic")
    assert (caught.value.code, caught.value.message) == ("ResourceNotFound", "Resource does not exist")
    fifo = await topics.create_topic("f.fifo", {"FifoTopic": "True"})
    fifo_attrs = await topics.get_topic_attributes(fifo)
    assert (fifo_attrs["FifoTopic"], fifo_attrs["ContentBasedDeduplication"]) == ("true", "false")


# -- durability ------------------------------------------------------------------------------------------


async def test_topics_and_subscriptions_survive_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    config = EngineConfig(path=tmp_path / "broker.db", clock=clock)
    async with Engine(config) as engine:
        arn = await topic_with_queues(engine, "durable", "q1")
        await engine.create_queue("q2")
        await engine.topics.subscribe(
            arn, "sqs", engine.queue_arn("q2"), {"RawMessageDelivery": "true", "FilterPolicy": '{"k": ["v"]}'}
        )
        await engine.topics.set_topic_attributes(arn, "DisplayName", "kept")
        fifo = await engine.topics.create_topic("d.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
        first = await engine.topics.publish(fifo, "a", message_group_id="g")
    async with Engine(config) as engine:
        assert await engine.topics.list_topics() == ([arn, fifo], None)
        assert (await engine.topics.get_topic_attributes(arn))["DisplayName"] == "kept"
        subs, _ = await engine.topics.list_subscriptions_by_topic(arn)
        assert len(subs) == 2
        await engine.topics.publish(arn, "hello", message_attributes={"k": {"DataType": "String", "StringValue": "v"}})
        await engine.topics.publish(
            arn, "filtered", message_attributes={"k": {"DataType": "String", "StringValue": "w"}}
        )
        assert messages_of(await drain(engine, "q1")) == ["hello", "filtered"]
        assert [m["Body"] for m in await drain(engine, "q2")] == ["hello"]
        # FIFO topic deduplication and sequence numbers carry over too
        assert await engine.topics.publish(fifo, "a", message_group_id="g") == first
        later = await engine.topics.publish(fifo, "b", message_group_id="g")
        assert int(later["SequenceNumber"]) > int(first["SequenceNumber"])


# -- pagination ------------------------------------------------------------------------------------------


async def test_list_topics_and_subscriptions_page_by_100(engine: Engine) -> None:
    topics = engine.topics
    arns = [await topics.create_topic(f"t{i:03d}") for i in range(150)]
    page, token = await topics.list_topics()
    assert page == arns[:100] and token == "100"
    page, token = await topics.list_topics(token)
    assert page == arns[100:] and token is None
    for i in range(130):
        await topics.subscribe(arns[0], "email", f"user{i}@example.com")
    subs, token = await topics.list_subscriptions()
    assert len(subs) == 100 and token == "100"
    assert subs[0]["SubscriptionArn"] == "PendingConfirmation"
    subs, token = await topics.list_subscriptions_by_topic(arns[0], token)
    assert len(subs) == 30 and token is None
    with pytest.raises(SnsError):
        await topics.list_topics("not-a-token")


# -- errors ----------------------------------------------------------------------------------------------


async def test_error_codes_for_bad_input(engine: Engine) -> None:
    topics = engine.topics
    arn = await topics.create_topic("t")

    async def code_of(call: Any) -> tuple[str, str]:
        with pytest.raises(SnsError) as caught:
            await call
        return caught.value.code, caught.value.message

    assert (await code_of(topics.create_topic("bad name")))[0] == "InvalidParameter"
    assert (await code_of(topics.create_topic("x" * 257)))[0] == "InvalidParameter"
    assert (await code_of(topics.create_topic("t", {"FifoTopic": "true"})))[1].startswith("Fifo Topic names")
    assert (await code_of(topics.create_topic("t", {"Bogus": "1"})))[0] == "InvalidParameter"
    missing = f"arn:aws:sns:{engine.region}:{engine.account_id}:missing"
    assert await code_of(topics.get_topic_attributes(missing)) == ("NotFound", "Topic does not exist")
    assert (await code_of(topics.get_topic_attributes("arn:aws:sns:us-east-1:999999999999:x")))[0] == (
        "AuthorizationError"
    )
    assert await code_of(topics.subscribe(arn, "sqs", "not-an-arn")) == (
        "InvalidParameter",
        "Invalid parameter: SQS endpoint ARN",
    )
    assert (await code_of(topics.subscribe(arn, "carrier-pigeon", "x")))[0] == "InvalidParameter"
    assert (await code_of(topics.subscribe(arn, "http", "https://example.com")))[0] == "InvalidParameter"
    bad_policy = {"FilterPolicy": json.dumps({"store": [str(i) for i in range(151)]})}
    assert await code_of(topics.subscribe(arn, "sqs", engine.queue_arn("q"), bad_policy)) == (
        "InvalidParameter",
        "Invalid parameter: FilterPolicy: Filter policy is too complex",
    )
    assert (await code_of(topics.subscribe(arn, "sqs", engine.queue_arn("q"), {"Nope": "1"})))[0] == (
        "InvalidParameter"
    )
    assert await code_of(topics.get_subscription_attributes(arn + ":nope")) == (
        "NotFound",
        "Subscription does not exist",
    )
    assert (await code_of(topics.publish(arn, "")))[1] == "Invalid parameter: Empty message"
    assert (await code_of(topics.publish(arn, "x" * 262_145)))[1] == "Invalid parameter: Message too long"
    await topics.publish(arn, "x" * 262_144)
    assert (await code_of(topics.publish(arn, "x", subject="s" * 100)))[1] == (
        "Subject must be less than 100 characters"
    )
    assert (await code_of(topics.publish(arn, "x", message_structure="xml")))[0] == "InvalidParameter"
    assert (await code_of(topics.publish(arn, "not json", message_structure="json")))[1] == (
        "Message is not valid JSON."
    )
    bad_number = {"price": {"DataType": "Number", "StringValue": "cheap"}}
    assert (
        "Could not cast message attribute 'price' value to number."
        in (await code_of(topics.publish(arn, "x", message_attributes=bad_number)))[1]
    )
    bad_type = {"a": {"DataType": "Text", "StringValue": "v"}}
    assert (await code_of(topics.publish(arn, "x", message_attributes=bad_type)))[0] == "InvalidParameter"
    assert (await code_of(topics.publish(arn, "x", phone_number="+15551234567")))[0] == "InvalidParameter"
    assert (await code_of(topics.publish(None, "x")))[0] == "InvalidParameter"
    assert (await code_of(topics.publish_batch(arn, [])))[0] == "EmptyBatchRequest"
    eleven = [{"Id": f"i{i}", "Message": "m"} for i in range(11)]
    assert (await code_of(topics.publish_batch(arn, eleven)))[0] == "TooManyEntriesInBatchRequest"
    twice = [{"Id": "same", "Message": "m"}, {"Id": "same", "Message": "m"}]
    assert (await code_of(topics.publish_batch(arn, twice)))[0] == "BatchEntryIdsNotDistinct"
    assert (await code_of(topics.publish_batch(arn, [{"Id": "bad id!", "Message": "m"}])))[0] == "InvalidBatchEntryId"
    assert (await code_of(topics.publish_batch(missing, [{"Id": "a", "Message": "m"}])))[0] == "NotFound"
    fifo = await topics.create_topic("f.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    assert await code_of(topics.publish_batch(fifo, [{"Id": "a", "Message": "m"}])) == (
        "InvalidParameter",
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
    )
    assert (await code_of(topics.confirm_subscription(arn, "no-such-token")))[0] == "InvalidParameter"


# -- HTTP subscriptions ----------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], str]]
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_endpoint() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Recorder", (_Recorder,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(handler: type[_Recorder], count: int) -> None:
    for _ in range(500):
        if len(handler.received) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} posts, got {len(handler.received)}")


async def test_http_subscription_handshake_then_notifications(
    engine: Engine, http_endpoint: tuple[str, type[_Recorder]]
) -> None:
    url, handler = http_endpoint
    topics = engine.topics
    arn = await topics.create_topic("hooks")
    assert await topics.subscribe(arn, "http", url) == "pending confirmation"
    await wait_for(handler, 1)
    headers, body = handler.received[0]
    confirmation = json.loads(body)
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == arn
    assert "Action=ConfirmSubscription" in confirmation["SubscribeURL"]
    await topics.publish(arn, "not yet")  # pending subscriptions get nothing
    (listed,), _ = await topics.list_subscriptions_by_topic(arn)
    assert listed["SubscriptionArn"] == "PendingConfirmation"

    sub_arn = await topics.confirm_subscription(arn, confirmation["Token"])
    assert await topics.confirm_subscription(arn, confirmation["Token"]) == sub_arn
    await topics.publish(arn, "hello hook", subject="hi")
    await wait_for(handler, 2)
    headers, body = handler.received[1]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == sub_arn
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert json.loads(body)["Message"] == "hello hook"
    assert len(handler.received) == 2
    attributes = await topics.get_subscription_attributes(sub_arn)
    assert attributes["PendingConfirmation"] == "false"


async def test_http_failures_retry_then_dead_letter(
    engine: Engine, clock: ManualClock, http_endpoint: tuple[str, type[_Recorder]]
) -> None:
    url, handler = http_endpoint
    handler.status = 503
    topics = engine.topics
    topics.auto_confirm = True
    await engine.create_queue("hook-dlq")
    arn = await topics.create_topic("hooks")
    sub = await topics.subscribe(
        arn,
        "http",
        url,
        {
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": engine.queue_arn("hook-dlq")}),
            "DeliveryPolicy": json.dumps({"healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 5}}),
        },
    )
    assert sub.startswith(arn)
    await topics.publish(arn, "flaky")
    await wait_for(handler, 1)
    for attempt in (2, 3):
        await asyncio.sleep(0.05)
        clock.advance(5)
        await wait_for(handler, attempt)
    for _ in range(200):
        if got := await receive(engine, "hook-dlq"):
            break
        await asyncio.sleep(0.01)
    assert messages_of(got) == ["flaky"]
    assert len(handler.received) == 3
    assert topics.metrics()[arn]["http_failed"] == 1


@pytest.fixture
async def auto_engine(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Engine]:
    async with Engine(EngineConfig(path=tmp_path / "auto.db", clock=clock)) as started:
        started.topics.auto_confirm = True
        yield started


async def test_auto_confirm_mode_confirms_http_at_once(auto_engine: Engine) -> None:
    arn = await auto_engine.topics.create_topic("t")
    sub = await auto_engine.topics.subscribe(arn, "https", "https://example.invalid/x")
    attributes = await auto_engine.topics.get_subscription_attributes(sub)
    assert attributes["PendingConfirmation"] == "false"
    assert json.loads(attributes["EffectiveDeliveryPolicy"])["defaultHealthyRetryPolicy"]["numRetries"] == 3
