"""The media service's process: its queue (its own media.uploaded: the processing worker), and the
runtime that serves its API and runs the worker, with the file storage under the data directory."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.bus.transport import Transport
from scte.contracts.media import MediaUploaded
from scte.kit.app import ServiceContext
from scte.kit.clock import Clock
from scte.kit.revocation import with_revocations
from scte.kit.runtime import ServiceRuntime
from scte.kit.settings import Settings, get_settings

from . import api, handlers
from .domain import UploadRejected
from .storage import FileStorage
from .workers import ImageWorkers

__all__ = ["QUEUE", "build_runtime", "main"]

QUEUE = with_revocations(
    QueueSpec(
        "media",
        subscriptions=(Subscription("media", event_types=(MediaUploaded.event_type,)),),
        visibility_timeout=120,  # a large image takes a while
    )
)


def build_runtime(
    settings: Settings | None = None, *, clock: Clock | None = None, transport: Transport | None = None
) -> ServiceRuntime:
    settings = settings or get_settings()
    images = ImageWorkers()
    return ServiceRuntime(
        "media",
        settings,
        routers=[api.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.media",
        domain_errors={UploadRejected: 400},
        dependencies={"storage": FileStorage(settings.service_dir("media")), "images": images},
        on_stop=_stop_workers,
        concurrency=4,
        clock=clock,
        transport=transport,
    )


async def _stop_workers(context: ServiceContext) -> None:
    images = context.extras["images"]
    assert isinstance(images, ImageWorkers)
    await images.aclose()


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
