"""scte.bus: the messaging SDK every SCTE service is built on.

Typed events, publish/subscribe over topics and queues, consumers with retries, dead letters,
idempotent handling (inbox) and a transactional outbox, on the embedded broker (in-process or over
HTTP) and on AWS SQS/SNS alike. `scte.bus` knows nothing of any service; `scte.queue` knows nothing
of `scte.bus`.

What a service author needs first is importable from here (`from scte.bus import Service, Event,
event, TopicSpec, Publish`); the names are loaded on first use, so importing one submodule does not
import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scte.bus.consumer import Publish
    from scte.bus.contracts import Event, event
    from scte.bus.envelope import Envelope
    from scte.bus.service import BusConfig, Service
    from scte.bus.topology import QueueSpec, Subscription, TopicSpec

__all__ = ["BusConfig", "Envelope", "Event", "Publish", "QueueSpec", "Service", "Subscription", "TopicSpec", "event"]

_HOMES = {
    "BusConfig": "scte.bus.service",
    "Envelope": "scte.bus.envelope",
    "Event": "scte.bus.contracts",
    "Publish": "scte.bus.consumer",
    "QueueSpec": "scte.bus.topology",
    "Service": "scte.bus.service",
    "Subscription": "scte.bus.topology",
    "TopicSpec": "scte.bus.topology",
    "event": "scte.bus.contracts",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scte.bus' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
