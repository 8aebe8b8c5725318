"""The search service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers

__all__ = ["QUEUE", "build_runtime", "main", "service"]

QUEUE = with_revocations(
    QueueSpec(
        "search",
        subscriptions=(
            Subscription("members", event_types=("member.profile_updated.v1", "member.registered.v1")),
            Subscription(
                "certification",
                event_types=(
                    "certification.awarded.v1",
                    "certification.emeritus_granted.v1",
                    "certification.expired.v1",
                    "certification.lapsed.v1",
                    "certification.renewed.v1",
                ),
            ),
            Subscription("learning", event_types=("course.published.v1",)),
            Subscription("media", event_types=("media.processed.v1",)),
        ),
    )
)
"""Standard, not FIFO (the media topic is not FIFO): a member's entry is rebuilt from the read
model on every event, so the last state wins whatever the order of arrival."""


service = PlatformService(
    "search", queue=QUEUE, handlers=handlers.HANDLERS, routers=[api.router], migrations="scte.services.search"
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
