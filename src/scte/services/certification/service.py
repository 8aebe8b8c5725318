"""The certification service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.learning import CourseCompleted, EventAttended, ExamPassed
from scte.contracts.members import MembershipRenewed, MembershipStarted
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers
from .domain import CertificationError

__all__ = ["QUEUE", "build_runtime", "main", "service"]

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


service = PlatformService(
    "certification",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router],
    migrations="scte.services.certification",
    domain_errors={CertificationError: 409, handlers.NotFound: 404},
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
