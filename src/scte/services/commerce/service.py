"""The commerce service's process: its queue, and the runtime that serves its API and handlers."""

from __future__ import annotations

from scte.bus.topology import QueueSpec
from scte.bus.transport import Transport
from scte.kit.clock import Clock
from scte.kit.revocation import with_revocations
from scte.kit.runtime import ServiceRuntime
from scte.kit.settings import Settings

from . import api, handlers
from .domain import CommerceError

__all__ = ["QUEUE", "build_runtime", "main"]

QUEUE = with_revocations(QueueSpec("commerce"))
"""Commerce reacts to no other service: its queue only receives its own scheduled invoicing runs."""


def build_runtime(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    card_processor: handlers.CardProcessor | None = None,
) -> ServiceRuntime:
    return ServiceRuntime(
        "commerce",
        settings,
        routers=[api.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.commerce",
        domain_errors={CommerceError: 400, handlers.Conflict: 409, handlers.NotFound: 404},
        dependencies={"card_processor": card_processor or handlers.EmbeddedCardProcessor()},
        clock=clock,
        transport=transport,
    )


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
