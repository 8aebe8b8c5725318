"""The notifications service's process: its queue, the runtime, and the dispatcher that sends the
delivery log's due notices in the background."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.kit.app import ServiceContext
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers, mailbox
from .dispatcher import Dispatcher
from .domain import Channel
from .providers import Provider, RecordingProvider, SmtpProvider

__all__ = ["QUEUE", "build_runtime", "dispatcher_for", "main", "service"]

_TOPIC_OF = {
    "member": "members",
    "membership": "members",
    "exam": "learning",
    "course": "learning",
    "certification": "certification",
    "recert": "certification",
    "order": "commerce",
    "payment": "commerce",
    "invoice": "commerce",
    "company": "companies",
    "report": "reports",
}


def _subscriptions() -> tuple[Subscription, ...]:
    by_topic: dict[str, list[str]] = {}
    for key in handlers.HANDLERS:
        event_type = key if isinstance(key, str) else key.event_type
        by_topic.setdefault(_TOPIC_OF[event_type.split(".")[0]], []).append(event_type)
    return tuple(Subscription(topic, event_types=tuple(sorted(types))) for topic, types in sorted(by_topic.items()))


QUEUE = with_revocations(QueueSpec("notifications", subscriptions=_subscriptions(), visibility_timeout=60))
"""Standard (not FIFO): notices are independent; the handler only writes the delivery log."""


def dispatcher_for(context: ServiceContext) -> Dispatcher:
    settings = context.settings
    directory = settings.service_dir("notifications")
    providers: dict[Channel, Provider] = {
        Channel.EMAIL: SmtpProvider(settings.smtp_host, settings.smtp_port),
        Channel.SMS: RecordingProvider(directory, Channel.SMS),
        Channel.PUSH: RecordingProvider(directory, Channel.PUSH),
    }
    return Dispatcher(context.sessionmaker, context.publisher, providers, context.clock)


async def dispatch(context: ServiceContext) -> None:
    """Background task: send due notices until the process stops."""
    dispatcher = dispatcher_for(context)
    context.extras["dispatcher"] = dispatcher
    dispatcher.start()
    try:
        await _forever()
    finally:
        await dispatcher.stop()


async def _forever() -> None:
    import asyncio

    await asyncio.Event().wait()


service = PlatformService(
    "notifications",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router, mailbox.router],
    migrations="scte.services.notifications",
    background=[dispatch],
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
