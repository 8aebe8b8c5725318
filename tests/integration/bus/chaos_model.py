"""The event and topology of the chaos test, shared by the test and its worker processes."""

from __future__ import annotations

from typing import ClassVar

from scte.bus.contracts import Event, EventRegistry
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology

CONTRACTS = EventRegistry()
TOPIC = "chaos"
QUEUE = "chaos-effects"


@CONTRACTS.register
class Counted(Event):
    event_type: ClassVar[str] = "chaos.counted.v1"
    seq: int


TOPOLOGY = Topology(
    topics=(TopicSpec(TOPIC),),
    # A short visibility timeout so that what a killed consumer held comes back within the test;
    # receives of killed consumers count, so the dead-letter threshold is high.
    queues=(QueueSpec(QUEUE, subscriptions=(Subscription(TOPIC),), visibility_timeout=6, max_receive_count=50),),
)
