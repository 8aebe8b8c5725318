"""Topology: the topics, queues, subscriptions and dead-letter queues of the platform, declared once.

    TOPOLOGY = Topology(
        topics=(TopicSpec("certification", fifo=True),),
        queues=(
            QueueSpec(
                "members",
                fifo=True,
                subscriptions=(Subscription("certification", event_types=("certification.awarded.v1",)),),
            ),
        ),
    )

`Transport.provision(topology)` makes a broker match it. Names are logical: a transport adds its
prefix and, for FIFO topics and queues, the `.fifo` suffix. Every queue gets a dead-letter queue
(`<name>-dlq`, FIFO when the queue is) that receives what failed `max_receive_count` times (the
consumer sends it there with its failure; the broker's own redrive policy, a few receives later, is
the safety net).
Subscriptions deliver raw (the event body and the message attributes as published), filtered on
`ce-type` by their `event_types` and on anything else by their `filter_policy`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scte.bus.contracts import validate_event_type

__all__ = ["MAX_NAME_LENGTH", "REDRIVE_MARGIN", "QueueSpec", "Subscription", "TopicSpec", "Topology"]

EVENT_TYPE_ATTRIBUTE = "ce-type"
MAX_NAME_LENGTH = 60
"""Logical names stay short so that prefix + name + `-dlq` + `.fifo` fits SQS's 80 characters."""
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{kind} name {name!r} must be 1..{MAX_NAME_LENGTH} characters of letters, digits, '-' and '_' "
            "(no '.fifo': FIFO is a flag)"
        )


@dataclass(frozen=True)
class TopicSpec:
    """A topic (SNS). `events` optionally lists the event types published on it: the publisher then
    refuses others, and the AsyncAPI document lists them."""

    name: str
    fifo: bool = False
    events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("topic", self.name)
        for event_type in self.events:
            validate_event_type(event_type)


@dataclass(frozen=True)
class Subscription:
    """A queue's subscription to a topic: every message, or those whose `ce-type` is one of
    `event_types` and that match `filter_policy` (an SNS filter policy on message attributes)."""

    topic: str
    event_types: tuple[str, ...] = ()
    filter_policy: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        given: object = self.event_types
        if isinstance(given, str):
            raise TypeError("event_types is a tuple of event types, not a string")
        for event_type in self.event_types:
            validate_event_type(event_type)
        if self.filter_policy is not None:
            if not isinstance(self.filter_policy, Mapping):
                raise TypeError("filter_policy must be a mapping (an SNS filter policy)")
            if self.event_types and EVENT_TYPE_ATTRIBUTE in self.filter_policy:
                raise ValueError(f"give {EVENT_TYPE_ATTRIBUTE!r} either as event_types or in filter_policy, not both")
            json.dumps(self.filter_policy)  # must be JSON

    def effective_filter_policy(self) -> dict[str, Any] | None:
        """The SNS filter policy provisioned for this subscription (None: every message)."""
        policy: dict[str, Any] = dict(self.filter_policy or {})
        if self.event_types:
            policy[EVENT_TYPE_ATTRIBUTE] = sorted(set(self.event_types))
        return policy or None

    def accepts(self, event_type: str) -> bool | None:
        """Whether an event of this type passes the `event_types` filter; None when `filter_policy`
        also decides (on attributes other than the type)."""
        if self.event_types and event_type not in self.event_types:
            return False
        policy = dict(self.filter_policy or {})
        if not policy:
            return True
        if set(policy) == {EVENT_TYPE_ATTRIBUTE} and isinstance(policy[EVENT_TYPE_ATTRIBUTE], list):
            values = policy[EVENT_TYPE_ATTRIBUTE]
            if all(isinstance(v, str) for v in values):
                return event_type in values
        return None


REDRIVE_MARGIN = 3
"""Receives the broker allows beyond a queue's `max_receive_count` before its own redrive policy
moves a message to the dead-letter queue (see `QueueSpec.broker_max_receive_count`)."""


@dataclass(frozen=True)
class QueueSpec:
    """A consuming service's queue (SQS), its subscriptions and its dead-letter queue."""

    name: str
    subscriptions: tuple[Subscription, ...] = ()
    fifo: bool = False
    visibility_timeout: int = 30
    max_receive_count: int = 5
    retention_seconds: int = 1_209_600

    def __post_init__(self) -> None:
        _check_name("queue", self.name)
        if self.name.endswith("-dlq"):
            raise ValueError(f"queue name {self.name!r} must not end with '-dlq' (reserved for dead-letter queues)")
        if not 0 <= self.visibility_timeout <= 43_200:
            raise ValueError(f"visibility_timeout of {self.name!r} must be 0..43200 seconds")
        if not 1 <= self.max_receive_count <= 1000:
            raise ValueError(f"max_receive_count of {self.name!r} must be 1..1000")
        if not 60 <= self.retention_seconds <= 1_209_600:
            raise ValueError(f"retention_seconds of {self.name!r} must be 60..1209600")
        topics = [s.topic for s in self.subscriptions]
        if len(set(topics)) != len(topics):
            raise ValueError(f"queue {self.name!r} subscribes to a topic twice; merge the subscriptions")

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}-dlq"

    @property
    def broker_max_receive_count(self) -> int:
        """The `maxReceiveCount` of the broker's own `RedrivePolicy`: `max_receive_count` plus
        `REDRIVE_MARGIN`, so that the consumer, which dead-letters at `max_receive_count` receives
        with the failure recorded, always comes first. Receives that never reached a handler (a
        message released at shutdown, or held by a consumer that was killed) count at the broker too;
        the broker's policy is only the safety net for consumers that die on a message every time."""
        return min(1000, self.max_receive_count + REDRIVE_MARGIN)


@dataclass(frozen=True)
class Topology:
    """The whole messaging topology; validated on construction."""

    topics: tuple[TopicSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    _topics: dict[str, TopicSpec] = field(init=False, repr=False, compare=False)
    _queues: dict[str, QueueSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        topics: dict[str, TopicSpec] = {}
        for topic in self.topics:
            if topic.name in topics:
                raise ValueError(f"topic {topic.name!r} is declared twice")
            topics[topic.name] = topic
        queues: dict[str, QueueSpec] = {}
        for queue in self.queues:
            if queue.name in queues:
                raise ValueError(f"queue {queue.name!r} is declared twice")
            queues[queue.name] = queue
            for sub in queue.subscriptions:
                spec = topics.get(sub.topic)
                if spec is None:
                    raise ValueError(f"queue {queue.name!r} subscribes to undeclared topic {sub.topic!r}")
                if queue.fifo and not spec.fifo:
                    raise ValueError(
                        f"FIFO queue {queue.name!r} cannot subscribe to standard topic {sub.topic!r} "
                        "(SNS delivers to FIFO queues from FIFO topics only)"
                    )
                if spec.events:
                    unknown = sorted(set(sub.event_types) - set(spec.events))
                    if unknown:
                        raise ValueError(
                            f"queue {queue.name!r} filters topic {sub.topic!r} on event types it does not carry: "
                            + ", ".join(unknown)
                        )
        object.__setattr__(self, "_topics", topics)
        object.__setattr__(self, "_queues", queues)

    def topic(self, name: str) -> TopicSpec:
        try:
            return self._topics[name]
        except KeyError:
            raise KeyError(f"topic {name!r} is not in the topology") from None

    def queue(self, name: str) -> QueueSpec:
        """A queue by name; a dead-letter queue's name gives its source queue's spec."""
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"queue {name!r} is not in the topology") from None

    def is_fifo_queue(self, name: str) -> bool | None:
        """Whether a queue (or a dead-letter queue) is FIFO; None when the topology does not name it."""
        if name in self._queues:
            return self._queues[name].fifo
        if name.endswith("-dlq") and name[: -len("-dlq")] in self._queues:
            return self._queues[name[: -len("-dlq")]].fifo
        return None

    def subscribers(self, topic: str) -> list[QueueSpec]:
        """The queues subscribed to a topic."""
        return [q for q in self.queues if any(s.topic == topic for s in q.subscriptions)]

    def merge(self, *others: Topology) -> Topology:
        """One topology of several (each service declares its queues; the platform merges them)."""
        topics = list(self.topics)
        queues = list(self.queues)
        for other in others:
            for topic in other.topics:
                known = next((t for t in topics if t.name == topic.name), None)
                if known is None:
                    topics.append(topic)
                elif known != topic:
                    raise ValueError(f"topic {topic.name!r} is declared differently in two topologies")
            queues.extend(other.queues)
        return Topology(topics=tuple(topics), queues=tuple(queues))
