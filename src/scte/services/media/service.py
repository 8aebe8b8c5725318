"""The media service's process: its queue (its own media.uploaded: the processing worker), and the
runtime that serves its API and runs the worker, with the file storage under the data directory."""

from __future__ import annotations

from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.media import MediaUploaded
from scte.kit.app import ServiceContext
from scte.kit.revocation import with_revocations
from scte.kit.service import PlatformService

from . import api, handlers
from .domain import UploadRejected
from .storage import FileStorage
from .workers import ImageWorkers

__all__ = ["QUEUE", "build_runtime", "main", "service"]

QUEUE = with_revocations(
    QueueSpec(
        "media",
        subscriptions=(Subscription("media", event_types=(MediaUploaded.event_type,)),),
        visibility_timeout=120,  # a large image takes a while
    )
)


async def _stop_workers(context: ServiceContext) -> None:
    images = context.extras["images"]
    assert isinstance(images, ImageWorkers)
    await images.aclose()


service = PlatformService(
    "media",
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router],
    migrations="scte.services.media",
    domain_errors={UploadRejected: 400},
    dependencies=lambda settings: {"storage": FileStorage(settings.service_dir("media")), "images": ImageWorkers()},
    on_stop=_stop_workers,
    concurrency=4,
)
build_runtime = service.runtime
main = service.run


if __name__ == "__main__":
    main()
