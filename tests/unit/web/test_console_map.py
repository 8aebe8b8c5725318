"""The data-flow map's layout (a pure function of the broker's topics and queues)."""

from __future__ import annotations

from scte.web.broker_admin import QueueRow, SubscriptionRow, TopicRow, source_of
from scte.web.console import BACKLOG_AGE, flow_map


def _queue(name: str, visible: int = 0, age: float | None = None) -> QueueRow:
    return QueueRow(name, visible, 0, 0, age, f"{name}-dlq", False, sent=3, received=2, deleted=2)


def test_every_topic_queue_and_service_is_drawn_with_its_edges() -> None:
    topics = [
        TopicRow("members.fifo", (SubscriptionRow("members.fifo", "sqs", "search"),), published=7),
        TopicRow("learning.fifo", (SubscriptionRow("learning.fifo", "sqs", "search"),), published=None),
    ]
    layout = flow_map(topics, [_queue("search")])
    kinds = {(n["kind"], n["key"]) for n in layout["nodes"]}
    assert {("topic", "members.fifo"), ("topic", "learning.fifo"), ("queue", "search")} <= kinds
    assert ("service", "members.fifo") in kinds and ("service", "search") in kinds
    pairs = {(e["source"], e["target"], e["kind"]) for e in layout["edges"]}
    assert ("members.fifo", "search", "deliver") in pairs and ("learning.fifo", "search", "deliver") in pairs
    assert ("search", "search", "consume") in pairs
    labels = {e["source"]: e["label"] for e in layout["edges"] if e["kind"] == "publish"}
    assert labels == {"members.fifo": "7 published", "learning.fifo": "? published"}
    assert layout["slow"] == []


def test_a_queue_with_old_waiting_messages_is_marked_slow() -> None:
    topics = [TopicRow("media", (SubscriptionRow("media", "sqs", "media"), SubscriptionRow("media", "sqs", "search")))]
    layout = flow_map(topics, [_queue("media", visible=4, age=BACKLOG_AGE + 1), _queue("search", visible=4, age=5)])
    assert layout["slow"] == ["media"]
    slow_edges = [(e["source"], e["target"]) for e in layout["edges"] if e["slow"]]
    assert slow_edges == [("media", "media")]


def test_a_dead_letter_queue_names_its_source() -> None:
    assert source_of("members-dlq.fifo") == "members.fifo"
    assert source_of("notifications-dlq") == "notifications"
