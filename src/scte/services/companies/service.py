"""The companies service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers, invitations
from .domain import CompaniesError

__all__ = ["QUEUE", "build_runtime", "main", "service"]


def _types(topic: str) -> tuple[str, ...]:
    names = (k if isinstance(k, str) else k.event_type for k in handlers.HANDLERS)
    return tuple(sorted(t for t in names if t.split(".")[0] in _PREFIXES[topic]))


_PREFIXES = {"certification": {"certification"}, "members": {"member"}, "commerce": {"order", "po"}}

QUEUE = with_revocations(
    QueueSpec(
        "companies",
        fifo=True,
        subscriptions=tuple(Subscription(topic, event_types=_types(topic)) for topic in _PREFIXES),
    )
)
"""FIFO: a member's certification events must apply in order (an expiry after its award)."""


service = PlatformService(
    "companies",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router, invitations.router],
    migrations="scte.services.companies",
    domain_errors={CompaniesError: 400},
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
