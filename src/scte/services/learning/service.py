"""The learning service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.commerce import OrderPaid
from scte.kit.app import ServiceContext
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers
from .domain import LearningError
from .seed import seed

__all__ = ["QUEUE", "build_runtime", "main", "service"]

QUEUE = with_revocations(
    QueueSpec(
        "learning",
        subscriptions=(Subscription("commerce", event_types=(OrderPaid.event_type,)),),
    )
)
"""Paid orders grant seats and exam attempts; their order does not matter (one order, one message)."""


async def _on_start(context: ServiceContext) -> None:
    await seed(context)


service = PlatformService(
    "learning",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router],
    migrations="scte.services.learning",
    domain_errors={LearningError: 400, handlers.Conflict: 409, handlers.NotFound: 404},
    on_start=_on_start,
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
