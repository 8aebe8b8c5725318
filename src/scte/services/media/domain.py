"""Media rules: what may be uploaded, and which renditions an image is processed into.

The declared content type of an upload is not trusted: the first bytes must agree with it, so a
script renamed photo.jpg is refused before it is stored. Renditions keep the aspect ratio and are
never larger than the original (upscaling adds bytes, not detail), except the square thumbnail,
which every image gets so that lists look alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "MAX_BYTES",
    "RENDITIONS",
    "Fit",
    "RenditionSpec",
    "UploadRejected",
    "plan_renditions",
    "rendition_size",
    "sniff_content_type",
    "storage_key",
    "validate_upload",
]

MIB = 1024 * 1024

ALLOWED_CONTENT_TYPES: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
}
"""Content type -> file extension used in storage."""

MAX_BYTES: dict[str, int] = {
    "image/jpeg": 10 * MIB,
    "image/png": 10 * MIB,
    "image/gif": 5 * MIB,
    "image/webp": 10 * MIB,
    "application/pdf": 25 * MIB,
}

MAX_PIXELS = 25_000_000
"""The pixel budget of one upload (25 MP: a 6000 x 4000 photograph fits). Larger images are refused
from their header, before decoding: a decompression bomb is a small file (a 38 KB PNG of 6320 x 6320
pixels decoded to 552 MB). Decoding itself runs in a bounded worker process (`workers.py`)."""


class UploadRejected(ValueError):
    """The upload is refused; the message says why, for the uploader."""


def sniff_content_type(head: bytes) -> str | None:
    """The content type the file's first bytes show, among the allowed ones."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def validate_upload(declared_type: str, size_bytes: int, head: bytes) -> str:
    """The accepted content type, or UploadRejected."""
    content_type = declared_type.split(";", 1)[0].strip().lower()
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise UploadRejected(
            f"{content_type or 'this type'} cannot be uploaded; allowed: {', '.join(ALLOWED_CONTENT_TYPES)}"
        )
    if size_bytes <= 0:
        raise UploadRejected("the file is empty")
    limit = MAX_BYTES[content_type]
    if size_bytes > limit:
        raise UploadRejected(f"the file is larger than {limit // MIB} MiB")
    sniffed = sniff_content_type(head)
    if sniffed != content_type:
        raise UploadRejected(f"the file's content is not {content_type}")
    return content_type


class Fit(StrEnum):
    INSIDE = "inside"
    """Scaled down to fit the box, aspect ratio kept."""
    COVER = "cover"
    """Scaled to cover the box and centre-cropped to it (square thumbnails)."""


@dataclass(frozen=True)
class RenditionSpec:
    name: str
    width: int
    height: int
    fit: Fit


RENDITIONS: tuple[RenditionSpec, ...] = (
    RenditionSpec("thumb", 160, 160, Fit.COVER),
    RenditionSpec("small", 480, 480, Fit.INSIDE),
    RenditionSpec("medium", 1024, 1024, Fit.INSIDE),
    RenditionSpec("large", 2048, 2048, Fit.INSIDE),
)


def rendition_size(width: int, height: int, spec: RenditionSpec) -> tuple[int, int]:
    """The output size of `spec` for a width x height original."""
    if width < 1 or height < 1:
        raise UploadRejected("an image has at least one pixel each way")
    if spec.fit is Fit.COVER:
        return spec.width, spec.height
    scale = min(spec.width / width, spec.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_renditions(content_type: str, width: int, height: int) -> list[tuple[RenditionSpec, tuple[int, int]]]:
    """The renditions to make. A PDF gets none (it is served as is); an image gets the thumbnail,
    and each larger size only when the original is bigger than the previous rendition."""
    if not content_type.startswith("image/"):
        return []
    if width * height > MAX_PIXELS:
        raise UploadRejected(f"the image has more than {MAX_PIXELS} pixels")
    plan: list[tuple[RenditionSpec, tuple[int, int]]] = []
    previous_fits_whole = False
    for spec in RENDITIONS:
        if spec.fit is Fit.COVER:
            plan.append((spec, rendition_size(width, height, spec)))
            continue
        if previous_fits_whole:
            break
        size = rendition_size(width, height, spec)
        plan.append((spec, size))
        previous_fits_whole = size == (width, height)
    return plan


def storage_key(media_id: str, rendition: str, content_type: str) -> str:
    """Where a file lives in storage (a path on disk, an S3 key): sharded by the id's first two
    characters so that no directory grows huge."""
    ext = ALLOWED_CONTENT_TYPES[content_type]
    if not media_id or "/" in media_id or media_id.startswith("."):
        raise UploadRejected(f"bad media id {media_id!r}")
    return f"{media_id[:2]}/{media_id}/{rendition}.{ext}"
