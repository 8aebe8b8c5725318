"""The reports service's process: its queue, and the runtime that serves its API and handlers."""

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


def build_runtime(
    settings: Settings | None = None, *, clock: Clock | None = None, transport: Transport | None = None
) -> ServiceRuntime:
    return ServiceRuntime(
        "reports",
        settings,
        routers=[api.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.reports",
        clock=clock,
        transport=transport,
    )


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
