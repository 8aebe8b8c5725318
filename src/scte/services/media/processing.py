"""Image processing with Pillow: the renditions `domain.plan_renditions` asks for.

Renditions are JPEG, or PNG when the original has transparency (a JPEG would paint it black).
The pixel count is checked from the header before any decoding, so a decompression bomb is refused
without allocating its pixels. This runs in a worker process (`workers.ImageWorkers`), never in the
service's own."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from .domain import MAX_PIXELS, Fit, UploadRejected, plan_renditions

__all__ = ["TOO_MUCH_MEMORY", "Made", "make_renditions"]

TOO_MUCH_MEMORY = "the image needs more memory to decode than an upload may use"


@dataclass(frozen=True)
class Made:
    name: str
    width: int
    height: int
    content_type: str
    data: bytes


def make_renditions(data: bytes, content_type: str) -> tuple[tuple[int, int] | None, list[Made]]:
    """(original size, renditions) of an upload; a PDF has neither. Raises UploadRejected for an
    image that cannot be read or is too large."""
    if not content_type.startswith("image/"):
        return None, []
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's guard (the workers' budget)
        raise UploadRejected(f"the image has more than {MAX_PIXELS} pixels") from None
    except Exception as exc:
        raise UploadRejected(f"the image cannot be read: {exc}") from exc
    plan = plan_renditions(content_type, width, height)  # refuses > MAX_PIXELS before decoding
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)
            image = ImageOps.exif_transpose(opened)
            image.load()
    except MemoryError:
        raise UploadRejected(TOO_MUCH_MEMORY) from None
    except Exception as exc:
        raise UploadRejected(f"the image cannot be decoded: {exc}") from exc
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    base = image.convert("RGBA" if alpha else "RGB")
    made: list[Made] = []
    for spec, size in plan:
        if spec.fit is Fit.COVER:
            out = ImageOps.fit(base, size, Image.Resampling.LANCZOS)
        else:
            out = base.resize(size, Image.Resampling.LANCZOS) if size != base.size else base.copy()
        buffer = io.BytesIO()
        if alpha:
            out.save(buffer, "PNG", optimize=True)
            out_type = "image/png"
        else:
            out.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
            out_type = "image/jpeg"
        made.append(Made(spec.name, out.width, out.height, out_type, buffer.getvalue()))
    return (width, height), made
