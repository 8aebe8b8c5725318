"""The activity service's process: its queue, the runtime serving its API, and the consumer that
feeds the buffered writer.

The consumer runs without the bus inbox (see handlers.py): it is built here as a background task
rather than by the runtime, which always gives its consumer the inbox."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from scte.bus.consumer import Consumer
from scte.bus.topology import QueueSpec, Subscription
from scte.kit.app import ServiceContext
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers
from .writer import ActivityWriter

__all__ = ["QUEUE", "build_runtime", "main", "service"]

_TOPIC_OF = {
    "activity": "activity",
    "member": "members",
    "membership": "members",
    "course": "learning",
    "exam": "learning",
    "event": "learning",
    "certification": "certification",
    "recert": "certification",
}


def _subscriptions() -> tuple[Subscription, ...]:
    by_topic: dict[str, list[str]] = {}
    for key in handlers.HANDLERS:
        event_type = key if isinstance(key, str) else key.event_type
        by_topic.setdefault(_TOPIC_OF[event_type.split(".")[0]], []).append(event_type)
    return tuple(Subscription(t, event_types=tuple(sorted(types))) for t, types in sorted(by_topic.items()))


QUEUE = with_revocations(QueueSpec("activity", subscriptions=_subscriptions(), visibility_timeout=60))
"""Standard: entries carry their own time, so order of arrival does not matter."""

PURGE_EVERY = timedelta(hours=1)


async def consume(context: ServiceContext) -> None:
    """Background task: the consumer and the buffered writer, for the life of the process."""
    writer = ActivityWriter(context.sessionmaker, context.clock)
    consumer = Consumer(
        context.transport,
        context.topology,
        queue=QUEUE.name,
        handlers=handlers.HANDLERS,
        dependencies={"writer": writer, "sessionmaker": context.sessionmaker},
        concurrency=200,  # many handlers wait on one batch
        name="activity",
    )
    context.extras.update(writer=writer, consumer=consumer)
    await consumer.start()
    try:
        while True:
            with contextlib.suppress(Exception):
                await writer.purge_expired()
            await asyncio.sleep(PURGE_EVERY.total_seconds())
    finally:
        await consumer.stop(context.settings.shutdown_grace_seconds)
        await writer.close()


service = PlatformService(
    "activity", queue=QUEUE, routers=[api.router], migrations="scte.services.activity", background=[consume]
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
