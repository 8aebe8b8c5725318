"""Events published by the media service: an upload, then the result of processing it."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = ["MediaProcessed", "MediaProcessingFailed", "MediaUploaded", "Rendition"]


class Rendition(BaseModel):
    """One processed variant of an upload (a thumbnail, a web size)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    width: Annotated[int, Field(ge=1)]
    height: Annotated[int, Field(ge=1)]
    content_type: str
    storage_key: str
    size_bytes: Annotated[int, Field(ge=0)]


@event
class MediaUploaded(Event):
    """A file was accepted and stored; processing into renditions follows."""

    event_type: ClassVar[str] = "media.uploaded.v1"

    media_id: Id
    owner_id: Id
    filename: str
    title: str = ""
    content_type: str
    size_bytes: Annotated[int, Field(ge=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    storage_key: str
    uploaded_at: UtcDatetime

    def subject(self) -> str | None:
        return self.media_id


@event
class MediaProcessed(Event):
    """An upload's renditions were made; it can now be shown and found by search."""

    event_type: ClassVar[str] = "media.processed.v1"

    media_id: Id
    owner_id: Id
    title: str = ""
    content_type: str
    renditions: tuple[Rendition, ...]
    processed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.media_id


@event
class MediaProcessingFailed(Event):
    """An upload could not be processed (corrupt or unreadable file); it will not be shown."""

    event_type: ClassVar[str] = "media.processing_failed.v1"

    media_id: Id
    owner_id: Id
    reason: str
    failed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.media_id
