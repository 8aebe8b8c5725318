"""The certification service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.bus.transport import Transport
from scte.contracts.learning import CourseCompleted, EventAttended, ExamPassed
from scte.contracts.members import MembershipRenewed, MembershipStarted
from scte.kit.clock import Clock
from scte.kit.revocation import with_revocations
from scte.kit.runtime import ServiceRuntime
from scte.kit.settings import Settings

from . import api, handlers
from .domain import CertificationError

__all__ = ["QUEUE", "build_runtime", "main"]

QUEUE = with_revocations(
    QueueSpec(
        "certification",
        fifo=True,
        subscriptions=(
            Subscription(
                "learning", event_types=(ExamPassed.event_type, CourseCompleted.event_type, EventAttended.event_type)
            ),
            Subscription("members", event_types=(MembershipStarted.event_type, MembershipRenewed.event_type)),
        ),
    )
)
"""FIFO: one member's exams, credits and milestones are handled in order (an award before the credit
that may meet its requirement). Milestones arrive on this queue from the service's own scheduler."""


def build_runtime(
    settings: Settings | None = None, *, clock: Clock | None = None, transport: Transport | None = None
) -> ServiceRuntime:
    return ServiceRuntime(
        "certification",
        settings,
        routers=[api.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.certification",
        domain_errors={CertificationError: 409, handlers.NotFound: 404},
        clock=clock,
        transport=transport,
    )


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
