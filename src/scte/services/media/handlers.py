"""The media worker: media.uploaded (its own event) -> renditions on disk -> media.processed, or
media.processing_failed for a file that cannot be processed. Images are decoded by `ImageWorkers`,
in worker processes, so the service's own loop keeps answering. Runs in the bus inbox's transaction;
the files are written before the rows, and rewriting them on a redelivery is harmless."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish
from scte.bus.contracts import Event
from scte.contracts.media import MediaProcessed, MediaProcessingFailed, MediaUploaded, Rendition
from scte.kit.clock import Clock

from .db import media, renditions
from .domain import UploadRejected, storage_key
from .storage import FileStorage
from .workers import ImageWorkers

__all__ = ["HANDLERS", "TOPIC", "on_media_uploaded"]

TOPIC = "media"


async def on_media_uploaded(
    event: MediaUploaded,
    session: AsyncSession,
    publish: Publish,
    clock: Clock,
    storage: FileStorage,
    images: ImageWorkers,
) -> None:
    status = await session.scalar(select(media.c.status).where(media.c.media_id == event.media_id))
    if status is None or status != "uploaded":
        return  # unknown here, or processed already
    now = clock.now()
    try:
        data = await asyncio.to_thread(storage.read, event.storage_key)
        size, made = await images.renditions(data, event.content_type)  # in a worker process
    except (UploadRejected, OSError) as exc:
        await session.execute(
            update(media).where(media.c.media_id == event.media_id).values(status="failed", error=str(exc))
        )
        await publish(
            MediaProcessingFailed(media_id=event.media_id, owner_id=event.owner_id, reason=str(exc), failed_at=now),
            topic=TOPIC,
        )
        return
    done: list[Rendition] = []
    await session.execute(delete(renditions).where(renditions.c.media_id == event.media_id))
    for item in made:
        key = storage_key(event.media_id, item.name, item.content_type)
        written = await asyncio.to_thread(storage.write, key, item.data)
        rendition = Rendition(
            name=item.name,
            width=item.width,
            height=item.height,
            content_type=item.content_type,
            storage_key=key,
            size_bytes=written,
        )
        done.append(rendition)
        await session.execute(renditions.insert().values(media_id=event.media_id, **rendition.model_dump()))
    width, height = size if size is not None else (None, None)
    await session.execute(
        update(media)
        .where(media.c.media_id == event.media_id)
        .values(status="processed", processed_at=now, width=width, height=height, error=None)
    )
    await publish(
        MediaProcessed(
            media_id=event.media_id,
            owner_id=event.owner_id,
            title=event.title or event.filename,
            content_type=event.content_type,
            renditions=tuple(done),
            processed_at=now,
        ),
        topic=TOPIC,
    )


HANDLERS: dict[str | type[Event], Handler] = {MediaUploaded: on_media_uploaded}
