"""Topology declarations and their validation; the provisioning helpers."""

from __future__ import annotations

import pytest

from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import IncomingMessage, OutgoingMessage
from scte.bus.transports._provision import _same, batches, entry, message_batches, physical_name, queue_policy
from scte.bus.transports.inprocess import incoming


def test_lookup_and_dead_letter_names() -> None:
    topology = Topology(
        topics=(TopicSpec("certification", fifo=True), TopicSpec("commerce")),
        queues=(
            QueueSpec("members", fifo=True, subscriptions=(Subscription("certification"),)),
            QueueSpec("mail", subscriptions=(Subscription("commerce"), Subscription("certification"))),
        ),
    )
    assert topology.topic("certification").fifo
    assert topology.queue("members").dead_letter_queue == "members-dlq"
    assert topology.is_fifo_queue("members-dlq") is True
    assert topology.is_fifo_queue("mail") is False
    assert topology.is_fifo_queue("other") is None
    assert [q.name for q in topology.subscribers("certification")] == ["members", "mail"]
    with pytest.raises(KeyError):
        topology.topic("nope")
    with pytest.raises(KeyError):
        topology.queue("nope")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Topology(queues=(QueueSpec("q", subscriptions=(Subscription("t"),)),)), "undeclared topic"),
        (
            lambda: Topology(
                topics=(TopicSpec("t"),), queues=(QueueSpec("q", fifo=True, subscriptions=(Subscription("t"),)),)
            ),
            "FIFO queue",
        ),
        (lambda: Topology(topics=(TopicSpec("t"), TopicSpec("t"))), "twice"),
        (lambda: Topology(queues=(QueueSpec("q"), QueueSpec("q"))), "twice"),
        (
            lambda: Topology(
                topics=(TopicSpec("t", events=("a.b.v1",)),),
                queues=(QueueSpec("q", subscriptions=(Subscription("t", event_types=("a.c.v1",)),)),),
            ),
            "does not carry",
        ),
        (lambda: QueueSpec("bad name"), "name"),
        (lambda: QueueSpec("q.fifo"), "name"),
        (lambda: QueueSpec("x" * 61), "name"),
        (lambda: QueueSpec("orders-dlq"), "dlq"),
        (lambda: QueueSpec("q", visibility_timeout=50_000), "visibility"),
        (lambda: QueueSpec("q", max_receive_count=0), "max_receive_count"),
        (lambda: QueueSpec("q", retention_seconds=10), "retention"),
        (lambda: QueueSpec("q", subscriptions=(Subscription("t"), Subscription("t"))), "twice"),
        (lambda: TopicSpec("t", events=("nope",)), "event_type"),
        (lambda: Subscription("t", event_types=("Bad",)), "event_type"),
        (lambda: Subscription("t", event_types=("a.b.v1",), filter_policy={"ce-type": ["a.b.v1"]}), "not both"),
    ],
)
def test_invalid_topologies_are_refused(build: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


def test_a_standard_queue_may_subscribe_to_a_fifo_topic() -> None:
    Topology(topics=(TopicSpec("t", fifo=True),), queues=(QueueSpec("q", subscriptions=(Subscription("t"),)),))


def test_effective_filter_policy() -> None:
    assert Subscription("t").effective_filter_policy() is None
    assert Subscription("t", event_types=("b.x.v1", "a.x.v1", "a.x.v1")).effective_filter_policy() == {
        "ce-type": ["a.x.v1", "b.x.v1"]
    }
    merged = Subscription("t", event_types=("a.x.v1",), filter_policy={"ce-source": ["members"]})
    assert merged.effective_filter_policy() == {"ce-source": ["members"], "ce-type": ["a.x.v1"]}
    assert merged.accepts("a.x.v1") is None  # the source decides too
    assert merged.accepts("b.x.v1") is False
    assert Subscription("t").accepts("a.x.v1") is True


def test_merge() -> None:
    a = Topology(topics=(TopicSpec("t"),), queues=(QueueSpec("a", subscriptions=(Subscription("t"),)),))
    b = Topology(topics=(TopicSpec("t"),), queues=(QueueSpec("b", subscriptions=(Subscription("t"),)),))
    merged = a.merge(b)
    assert [t.name for t in merged.topics] == ["t"]
    assert [q.name for q in merged.queues] == ["a", "b"]
    with pytest.raises(ValueError, match="differently"):
        a.merge(Topology(topics=(TopicSpec("t", fifo=True),)))


def test_physical_names() -> None:
    assert physical_name("dev-", "members", False) == "dev-members"
    assert physical_name("dev-", "members", True) == "dev-members.fifo"
    assert physical_name("dev-", "members-dlq", True) == "dev-members-dlq.fifo"
    assert physical_name("", "x.fifo", False) == "x.fifo"


def test_entries_respect_fifo_rules() -> None:
    message = OutgoingMessage(body="{}", attributes={"a": "1"}, group_id="g", deduplication_id="d", delay_seconds=5)
    assert entry(message, fifo=True, body_key="MessageBody") == {
        "MessageBody": "{}",
        "MessageAttributes": {"a": {"DataType": "String", "StringValue": "1"}},
        "MessageGroupId": "g",
        "MessageDeduplicationId": "d",
    }
    standard = entry(message, fifo=False, body_key="MessageBody")
    assert "MessageGroupId" not in standard and standard["DelaySeconds"] == 5
    assert "DelaySeconds" not in entry(message, fifo=False, body_key="Message")  # SNS has no per-message delay


def test_batches_split_by_count_and_size() -> None:
    entries = [{"Id": str(i), "Message": "x" * 100} for i in range(25)]
    assert [len(b) for b in batches(entries, "Message", 262_144)] == [10, 10, 5]
    big = [{"Id": str(i), "Message": "x" * 100_000} for i in range(5)]
    assert [len(b) for b in batches(big, "Message", 262_144)] == [2, 2, 1]
    assert batches([], "Message", 262_144) == []


def _counted(body: str, attributes: dict[str, str]) -> int:
    """The size as it was always counted: the body, and each name and value plus 6, in UTF-8."""
    return len(body.encode()) + sum(len(k.encode()) + len(v.encode()) + 6 for k, v in attributes.items())


@pytest.mark.parametrize("text", ["x", "é", "€", "😀"])  # 1, 2, 3 and 4 bytes in UTF-8
def test_batches_count_utf8_bytes_of_bodies_names_and_values(text: str) -> None:
    attributes = {"ce-type": "a.b.v1", f"n{text}": text * 10}
    size = _counted(text * 1000, attributes)
    messages = [OutgoingMessage(body=text * 1000, attributes=attributes) for _ in range(6)]
    entries = [entry(m, fifo=False, body_key="Message", entry_id=str(i)) for i, m in enumerate(messages)]
    for limit, expected in ((3 * size, [3, 3]), (3 * size - 1, [2, 2, 2]), (size - 1, [1] * 6)):
        assert [len(b) for b in batches(entries, "Message", limit)] == expected
        assert [len(b) for b in message_batches(messages, limit)] == expected
    plain = [OutgoingMessage(body=text * 10) for _ in range(12)]
    assert [list(b) for b in message_batches(plain, 10_000)] == [plain[:10], plain[10:]]


def test_attribute_comparison_is_semantic() -> None:
    assert _same(
        "RedrivePolicy",
        '{"maxReceiveCount":"5","deadLetterTargetArn":"a"}',
        '{"deadLetterTargetArn": "a", "maxReceiveCount": 5}',
    )
    assert not _same(
        "RedrivePolicy",
        '{"maxReceiveCount":"5","deadLetterTargetArn":"a"}',
        '{"deadLetterTargetArn": "a", "maxReceiveCount": 3}',
    )
    assert _same("FilterPolicy", '{"ce-type":["b","a"]}', '{"ce-type": ["a", "b"]}')
    assert not _same("VisibilityTimeout", None, "30")
    assert _same("VisibilityTimeout", "30", "30")
    assert '"aws:SourceArn"' in queue_policy("arn:q", ["arn:t2", "arn:t1"])


def test_a_received_entry_becomes_an_incoming_message() -> None:
    raw = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": "{}",
        "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000", "MessageGroupId": "g"},
        "MessageAttributes": {
            "ce-id": {"DataType": "String", "StringValue": "e"},
            "n": {"DataType": "Number", "StringValue": "5"},
            "b": {"DataType": "Binary", "BinaryValue": b"x"},
        },
    }
    assert incoming("q", raw) == IncomingMessage(
        queue="q",
        message_id="m-1",
        receipt="r-1",
        body="{}",
        attributes={"ce-id": "e", "n": "5"},
        receive_count=3,
        sent_timestamp_ms=1_700_000_000_000,
        group_id="g",
    )
    bare = incoming("q", {"MessageId": "m", "ReceiptHandle": "r", "Body": "b"})
    assert (bare.attributes, bare.receive_count, bare.sent_timestamp_ms, bare.group_id) == ({}, 1, 0, None)
