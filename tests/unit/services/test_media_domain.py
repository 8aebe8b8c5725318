"""Media rules: allowed types checked against the file's bytes, size limits, renditions."""

from __future__ import annotations

import pytest

from scte.services.media.domain import (
    MAX_BYTES,
    MIB,
    RENDITIONS,
    UploadRejected,
    plan_renditions,
    rendition_size,
    sniff_content_type,
    storage_key,
    validate_upload,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 8
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "
SPEC = {spec.name: spec for spec in RENDITIONS}


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"GIF89a....", "image/gif"),
        (WEBP, "image/webp"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"<script>", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"", None),
    ],
)
def test_sniffing_the_first_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


def test_an_allowed_upload_is_accepted_with_its_normalised_type() -> None:
    assert validate_upload("Image/PNG; charset=binary", 1_000, PNG) == "image/png"


@pytest.mark.parametrize(
    ("declared", "size", "head", "message"),
    [
        ("text/html", 10, b"<html>", "cannot be uploaded"),
        ("image/svg+xml", 10, b"<svg", "cannot be uploaded"),
        ("image/png", 0, PNG, "empty"),
        ("image/png", 10 * MIB + 1, PNG, "larger than 10 MiB"),
        ("image/jpeg", 100, PNG, "not image/jpeg"),
        ("application/pdf", 100, b"MZ\x90\x00", "not application/pdf"),
    ],
)
def test_uploads_refused(declared: str, size: int, head: bytes, message: str) -> None:
    with pytest.raises(UploadRejected, match=message):
        validate_upload(declared, size, head)


def test_size_limit_is_inclusive() -> None:
    assert validate_upload("image/png", MAX_BYTES["image/png"], PNG) == "image/png"
    assert validate_upload("application/pdf", 25 * MIB, b"%PDF-1.4") == "application/pdf"


@pytest.mark.parametrize(
    ("original", "rendition", "expected"),
    [
        ((4000, 3000), "small", (480, 360)),
        ((3000, 4000), "small", (360, 480)),
        ((4000, 3000), "large", (2048, 1536)),
        ((300, 200), "small", (300, 200)),  # never upscaled
        ((300, 200), "thumb", (160, 160)),  # thumbnails are square crops
        ((10000, 1), "small", (480, 1)),  # at least a pixel
    ],
)
def test_rendition_sizes_keep_the_aspect_ratio(
    original: tuple[int, int], rendition: str, expected: tuple[int, int]
) -> None:
    assert rendition_size(*original, SPEC[rendition]) == expected


def test_renditions_planned_stop_once_the_original_fits() -> None:
    assert [s.name for s, _ in plan_renditions("image/jpeg", 4000, 3000)] == ["thumb", "small", "medium", "large"]
    assert [s.name for s, _ in plan_renditions("image/jpeg", 800, 600)] == ["thumb", "small", "medium"]
    assert [s.name for s, _ in plan_renditions("image/png", 480, 100)] == ["thumb", "small"]
    assert plan_renditions("application/pdf", 0, 0) == []


def test_huge_images_are_refused_before_decoding() -> None:
    with pytest.raises(UploadRejected, match="pixels"):
        plan_renditions("image/png", 10_000, 10_000)


def test_storage_keys_are_sharded_and_safe() -> None:
    assert storage_key("ab12cd", "thumb", "image/jpeg") == "ab/ab12cd/thumb.jpg"
    for bad in ("", "../etc", "a/b"):
        with pytest.raises(UploadRejected):
            storage_key(bad, "thumb", "image/png")
