"""The search service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.bus.transport import Transport
from scte.kit.clock import Clock
from scte.kit.revocation import with_revocations
from scte.kit.runtime import ServiceRuntime
from scte.kit.settings import Settings

from . import api, handlers

__all__ = ["QUEUE", "build_runtime", "main"]

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


def build_runtime(
    settings: Settings | None = None, *, clock: Clock | None = None, transport: Transport | None = None
) -> ServiceRuntime:
    return ServiceRuntime(
        "search",
        settings,
        routers=[api.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.search",
        clock=clock,
        transport=transport,
    )


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
