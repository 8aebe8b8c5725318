"""Media on a real database, broker and file system: upload validated by the domain, processed by
the service's own worker into renditions with Pillow, media.processed, files served."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def image(width: int = 800, height: int = 600, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128)).save(buffer, fmt)
    return buffer.getvalue()


async def upload(
    service: Any, data: bytes, content_type: str = "image/jpeg", member: str = "m1", title: str = "Splice enclosure"
) -> Any:
    return await service.client.post(
        "/media",
        files={"file": ("photo.jpg", data, content_type)},
        data={"title": title},
        headers=service.auth(member),
    )


async def processed(service: Any, media_id: str, member: str = "m1") -> Any:
    r = await service.client.get(f"/media/{media_id}", headers=service.auth(member))
    return r.json() if r.json().get("status") in ("processed", "failed") else None


async def test_upload_is_processed_into_a_thumbnail(service: Any) -> None:
    r = await upload(service, image())
    assert r.status_code == 201, r.text
    media_id = r.json()["media_id"]
    assert r.json()["status"] == "uploaded"
    body = await service.eventually(lambda: processed(service, media_id))
    assert body["status"] == "processed"
    sizes = {x["name"]: (x["width"], x["height"]) for x in body["renditions"]}
    assert sizes == {"thumb": (160, 160), "small": (480, 360), "medium": (800, 600)}  # never upscaled
    r = await service.client.get(f"/media/{media_id}/renditions/thumb", headers=service.auth("m2"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (160, 160)
    assert (service.data_dir / "media" / media_id[:2] / media_id / "thumb.jpg").is_file()
    [event] = await service.published("media.processed.v1")
    assert event.media_id == media_id and event.title == "Splice enclosure"
    r = await service.client.get(f"/media/{media_id}/original", headers=service.auth("m1"))
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"


async def test_transparent_png_keeps_alpha(service: Any) -> None:
    r = await upload(service, image(300, 100, "PNG", "RGBA"), "image/png")
    assert r.status_code == 201, r.text
    body = await service.eventually(lambda: processed(service, r.json()["media_id"]))
    thumb = next(x for x in body["renditions"] if x["name"] == "thumb")
    assert thumb["content_type"] == "image/png"


async def test_unreadable_image_fails_processing(service: Any) -> None:
    r = await upload(service, b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    assert r.status_code == 201
    body = await service.eventually(lambda: processed(service, r.json()["media_id"]))
    assert body["status"] == "failed" and body["error"]
    assert len(await service.published("media.processing_failed.v1")) == 1
    # an unprocessed upload is its owner's and staff's only
    assert (await service.client.get(f"/media/{body['media_id']}", headers=service.auth("m2"))).status_code == 404


async def test_bad_uploads_are_refused_with_a_message(service: Any) -> None:
    r = await upload(service, b"#!/bin/sh\nrm -rf /\n", "image/jpeg")
    assert r.status_code == 400 and "not image/jpeg" in r.json()["message"]
    r = await upload(service, b"MZ\x90\x00", "application/x-msdownload")
    assert r.status_code == 415 and "cannot be uploaded" in r.json()["message"]
    r = await upload(service, b"GIF89a" + b"\x00" * (5 * 1024 * 1024), "image/gif")
    assert r.status_code == 413 and "larger than 5 MiB" in r.json()["message"]
    r = await upload(service, b"", "image/png")
    assert r.status_code == 400 and "empty" in r.json()["message"]
    r = await service.client.post("/media", data={"title": "x"}, headers=service.auth("m1"))
    assert r.status_code == 422 and "file" in r.json()["message"]
    assert (
        await service.client.post("/media", files={"file": ("a.png", image(fmt="PNG"), "image/png")})
    ).status_code == 401
    r = await service.client.get("/media/nope", headers=service.auth("m1"))
    assert r.status_code == 422
    r = await service.client.get(f"/media/{'0' * 32}", headers=service.auth("m1"))
    assert r.status_code == 404 and r.json()["message"]


async def test_a_member_lists_their_own_uploads_only(service: Any) -> None:
    first = (await upload(service, image(), title="First")).json()["media_id"]
    second = (await upload(service, image(), title="Second")).json()["media_id"]
    await upload(service, image(), member="m2", title="Someone else's")
    r = await service.client.get("/members/m1/media", headers=service.auth("m1"))
    assert r.status_code == 200, r.text
    assert {m["media_id"] for m in r.json()} == {first, second}
    assert all(m["owner_id"] == "m1" for m in r.json())
    r = await service.client.get("/members/m1/media", headers=service.auth("m2"))
    assert r.status_code == 403
    r = await service.client.get("/members/m1/media")
    assert r.status_code == 401
    r = await service.client.get("/members/m1/media?limit=0", headers=service.auth("m1"))
    assert r.status_code == 422


async def test_an_uploads_owner_is_named_to_the_owner_and_staff_only(service: Any) -> None:
    """A processed upload is visible to every signed-in member; its owner_id named its uploader even
    when they are not listed in the directory."""
    r = await upload(service, image(), member="unlisted-7")
    assert r.status_code == 201, r.text
    assert r.json()["owner_id"] == "unlisted-7"
    media_id = r.json()["media_id"]
    await service.eventually(lambda: processed(service, media_id, member="unlisted-7"))
    seen_by_other = await service.client.get(f"/media/{media_id}", headers=service.auth("m2"))
    assert seen_by_other.status_code == 200 and seen_by_other.json()["owner_id"] is None
    assert "unlisted-7" not in seen_by_other.text
    own = await service.client.get(f"/media/{media_id}", headers=service.auth("unlisted-7"))
    assert own.json()["owner_id"] == "unlisted-7"
    assert (await service.client.get(f"/media/{media_id}", headers=service.staff())).json()["owner_id"] == "unlisted-7"
