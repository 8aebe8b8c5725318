"""The commerce service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec
from scte.bus.transport import Transport
from scte.kit.clock import Clock
from scte.kit.revocation import with_revocations
from scte.kit.runtime import ServiceRuntime
from scte.kit.service import PlatformService
from scte.kit.settings import Settings

from . import api, handlers
from .domain import CommerceError

__all__ = ["QUEUE", "build_runtime", "main", "service"]

QUEUE = with_revocations(QueueSpec("commerce"))
"""Commerce reacts to no other service: its queue only receives its own scheduled invoicing runs."""


service = PlatformService(
    "commerce",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router],
    migrations="scte.services.commerce",
    domain_errors={CommerceError: 400, handlers.Conflict: 409, handlers.NotFound: 404},
    dependencies=lambda _settings: {"card_processor": handlers.EmbeddedCardProcessor()},
)
main = service.run


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    card_processor: handlers.CardProcessor | None = None,
) -> ServiceRuntime:
    """The service's process; `card_processor` replaces the embedded one (tests)."""
    given = {"card_processor": card_processor} if card_processor is not None else None
    return service.runtime(settings, clock=clock, transport=transport, dependencies=given)


if __name__ == "__main__":
    main()
