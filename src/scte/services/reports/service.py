"""The reports service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers

__all__ = ["QUEUE", "build_runtime", "main", "service"]

QUEUE = with_revocations(
    QueueSpec(
        "reports",
        fifo=True,
        subscriptions=(
            Subscription("members", event_types=("member.registered.v1", "member.status_changed.v1")),
            Subscription("certification", event_types=("certification.awarded.v1",)),
            Subscription("commerce", event_types=("order.paid.v1",)),
            Subscription("learning", event_types=("course.completed.v1",)),
        ),
    )
)
"""FIFO: a member's registration must not overtake their later status changes."""


service = PlatformService(
    "reports", queue=QUEUE, handlers=handlers.HANDLERS, routers=[api.router], migrations="scte.services.reports"
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
