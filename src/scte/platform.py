"""The composition root: the platform's topics, its services and their ports, and the topology.

A topic per publishing unit, carrying the events of that unit's contract module. Topics whose
consumers need one member's (or one company's, or one order's) events in order are FIFO. Each
service declares the queue it consumes from in its own `service.QUEUE`; `topology()` merges them.

Service modules are imported lazily and one at a time, so a service still under construction (no
`service.py` yet, or one that fails to import) leaves the others usable. The contracts are imported on
the first use of `TOPICS` too: the supervisor reads the ports here and nothing else (it stays small).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scte.bus.topology import TopicSpec, Topology

__all__ = [
    "BROKER_PORT",
    "FIFO_TOPICS",
    "GATEWAY_PORT",
    "SERVICES",
    "SMTP_PORT",
    "TOPICS",
    "ServiceInfo",
    "available_services",
    "installed_services",
    "service_module",
    "topology",
]

log = logging.getLogger(__name__)

GATEWAY_PORT = 8000
BROKER_PORT = 9324
SMTP_PORT = 1025

FIFO_TOPICS = frozenset({"members", "learning", "certification", "commerce", "companies"})
"""Per-member (per-order, per-company) order matters for their consumers: a status change must not
overtake the award that caused it, a charge must reach the invoice builder before the invoice."""


def _events_of(module: ModuleType) -> tuple[str, ...]:
    from scte.bus.contracts import Event

    found = {
        value.event_type
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Event) and "event_type" in value.__dict__
    }
    return tuple(sorted(found))


@functools.cache
def _topics() -> tuple[TopicSpec, ...]:
    from scte import contracts
    from scte.bus.topology import TopicSpec

    return tuple(
        TopicSpec(
            module.__name__.rsplit(".", 1)[1],
            fifo=module.__name__.rsplit(".", 1)[1] in FIFO_TOPICS,
            events=_events_of(module),
        )
        for module in contracts.MODULES
    )


TOPICS: tuple[TopicSpec, ...]
"""One topic per contract module: `members`, `learning`, `certification`, `commerce`, `companies`,
`notifications`, `activity`, `reports`, `media`. Made on first use (module `__getattr__`)."""


def __getattr__(name: str) -> Any:
    if name == "TOPICS":
        return _topics()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    module: str
    """The service package; `<module>.service` holds QUEUE, build_runtime and main."""


SERVICES: dict[str, ServiceInfo] = {
    info.name: info
    for info in (
        ServiceInfo("members", 8101, "scte.services.members"),
        ServiceInfo("learning", 8102, "scte.services.learning"),
        ServiceInfo("certification", 8103, "scte.services.certification"),
        ServiceInfo("commerce", 8104, "scte.services.commerce"),
        ServiceInfo("companies", 8105, "scte.services.companies"),
        ServiceInfo("notifications", 8106, "scte.services.notifications"),
        ServiceInfo("activity", 8107, "scte.services.activity"),
        ServiceInfo("reports", 8108, "scte.services.reports"),
        ServiceInfo("media", 8109, "scte.services.media"),
        ServiceInfo("search", 8110, "scte.services.search"),
    )
}


def service_module(name: str) -> ModuleType | None:
    """`scte.services.<name>.service`, or None when the service has none yet or it fails to import."""
    info = SERVICES[name]
    target = f"{info.module}.service"
    if importlib.util.find_spec(info.module) is None:
        return None
    try:
        if importlib.util.find_spec(target) is None:
            return None
        return importlib.import_module(target)
    except Exception:
        log.exception("service %s: %s cannot be imported; leaving it out", name, target)
        return None


def available_services() -> list[str]:
    """The services that have a `service.py` importable now."""
    return [name for name in SERVICES if service_module(name) is not None]


def installed_services() -> list[str]:
    """The services that have a `service.py`, found without importing it (as the supervisor does: it
    starts them and keeps none of their modules; one that fails to import fails its own process)."""
    found = []
    for name, info in SERVICES.items():
        if importlib.util.find_spec(info.module) is not None and importlib.util.find_spec(f"{info.module}.service"):
            found.append(name)
    return found


def topology(services: list[str] | None = None) -> Topology:
    """The topics and every (available) service's queue."""
    from scte.bus.topology import QueueSpec, Topology

    queues: list[QueueSpec] = []
    for name in services if services is not None else list(SERVICES):
        module = service_module(name)
        if module is None:
            continue
        queue = getattr(module, "QUEUE", None)
        if isinstance(queue, QueueSpec):
            queues.append(queue)
        elif queue is not None:
            log.warning("service %s: QUEUE is not a QueueSpec; leaving it out", name)
    return Topology(topics=_topics(), queues=tuple(queues))
