"""Topics and subscriptions as stored (tables `topics`, `subscriptions`), and what a publish carries.

`load_topic`, `load_subscription`, `save_topic` and the row readers are the only SQL about the two
catalog tables outside the API methods; every function here runs inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scte.queue.attribute_shapes import StringValues
from scte.queue.filter_policy import FilterPolicy, parse_policy
from scte.queue.topics.errors import not_found, resource_not_found


@dataclass(slots=True)
class Topic:
    name: str
    arn: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    sequence: int  # FIFO topics: the last SequenceNumber given
    deleted: int  # subscriptions deleted so far (SubscriptionsDeleted)

    @property
    def content_dedup(self) -> bool:
        return self.attributes.get("ContentBasedDeduplication") == "true"


TOPIC_COLUMNS = "name, arn, fifo, attributes, tags, sequence, deleted_subscriptions"


def topic_of(row: Sequence[Any]) -> Topic:
    name, arn, fifo, attributes, tags, sequence, deleted = row
    return Topic(name, arn, bool(fifo), json.loads(attributes), json.loads(tags), sequence, deleted)


@dataclass(slots=True)
class Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str]
    confirmed: bool
    token: str | None
    authenticated: bool

    @property
    def raw(self) -> bool:
        return self.attributes.get("RawMessageDelivery") == "true"

    def filter(self) -> FilterPolicy | None:
        text = self.attributes.get("FilterPolicy")
        if not text:
            return None
        return parse_policy(text, self.attributes.get("FilterPolicyScope") or "MessageAttributes")


SUBSCRIPTION_COLUMNS = "arn, topic_arn, protocol, endpoint, owner, attributes, confirmed, token, authenticated"


def subscription_of(row: Sequence[Any]) -> Subscription:
    arn, topic_arn, protocol, endpoint, owner, attributes, confirmed, token, authenticated = row
    return Subscription(
        arn, topic_arn, protocol, endpoint, owner, json.loads(attributes), bool(confirmed), token, bool(authenticated)
    )


def load_topic(conn: sqlite3.Connection, arn: str) -> Topic:
    """The topic, or `NotFound`."""
    row = conn.execute(f"SELECT {TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
    if row is None:
        raise not_found()
    return topic_of(row)


def load_tagged_topic(conn: sqlite3.Connection, arn: str) -> Topic:
    """The topic, or `ResourceNotFound` (the tagging actions' error)."""
    row = conn.execute(f"SELECT {TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
    if row is None:
        raise resource_not_found()
    return topic_of(row)


def save_topic(conn: sqlite3.Connection, topic: Topic) -> None:
    """Write back the topic's attributes and tags."""
    conn.execute(
        "UPDATE topics SET attributes=?, tags=? WHERE arn=?",
        (json.dumps(topic.attributes), json.dumps(topic.tags), topic.arn),
    )


def load_subscription(conn: sqlite3.Connection, arn: str) -> Subscription:
    """The subscription, or `NotFound`."""
    row = conn.execute(f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE arn=?", (arn,)).fetchone()
    if row is None:
        raise not_found("Subscription does not exist")
    return subscription_of(row)


def confirmed_subscriptions(conn: sqlite3.Connection, topic_arn: str) -> list[Subscription]:
    """The topic's confirmed subscriptions, in creation order (the ones a publish fans out to)."""
    return [
        subscription_of(r)
        for r in conn.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? AND confirmed=1 ORDER BY rowid",
            (topic_arn,),
        )
    ]


@dataclass(slots=True)
class Publication:
    """One publish request, validated as far as it can be without the topic."""

    message_id: str
    message: str
    subject: str | None
    attributes: dict[str, dict[str, Any]] | None
    structure: dict[str, str] | None
    group_id: str | None
    dedup_id: str | None
    published_at: float  # clock seconds at acceptance
    entry_id: str | None = None
    strings: StringValues | None = None  # what is known of `attributes` when the shaped path made them

    @property
    def timestamp(self) -> str:
        """`Timestamp` of the notification (made when a notification needs it: raw deliveries do not)."""
        from scte.queue.topics.envelope import timestamp  # (envelope imports this module)

        return timestamp(self.published_at)


@dataclass(slots=True)
class Outcome:
    """What one accepted publication did, for the work after its commit."""

    message_id: str
    sequence: str | None = None
    # (defaultdicts, not Counters: a Counter is two Python calls to make, and there are two a publication)
    # queue (this region) -> messages written into it; topic counters: delivered, filtered_out, ...
    sent: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    http: bool = False  # HTTP notifications were queued
    regions: bool = False  # deliveries to other regions' queues were queued
