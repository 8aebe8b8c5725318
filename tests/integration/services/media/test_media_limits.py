"""Image processing does not stall the service (issue: a 38 KB PNG of 6320 x 6320 pixels stalled
media's `/health` for 10 s at 552 MB): a lower pixel budget per upload, checked from the header, and
decoding in a bounded worker process whose failures stay its own."""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

import pytest
from PIL import Image

from scte.services.media.domain import MAX_PIXELS, UploadRejected
from scte.services.media.workers import ImageWorkers

from .test_media import processed, upload


def bomb() -> bytes:
    """The reproduction: 6320 x 6320 pixels of one colour, a PNG of about 38 KB."""
    buffer = io.BytesIO()
    Image.new("L", (6320, 6320), 0).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def gradient(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


async def test_the_decompression_bomb_is_refused_and_health_answers_meanwhile(service: Any) -> None:
    data = bomb()
    assert len(data) < 64 * 1024 and MAX_PIXELS < 6320 * 6320
    r = await upload(service, data, "image/png")
    assert r.status_code == 201, r.text
    media_id = r.json()["media_id"]
    healths: list[int] = []

    async def check() -> Any:
        healths.append((await service.client.get("/health")).status_code)
        return await processed(service, media_id)

    body = await service.eventually(check, timeout=60)
    assert body["status"] == "failed"
    assert body["error"] == f"the image has more than {MAX_PIXELS} pixels"
    assert healths and set(healths) == {200}
    assert len(await service.published("media.processing_failed.v1")) == 1


@pytest.mark.timeout(300)
async def test_a_large_image_within_the_budget_is_processed(service: Any) -> None:
    r = await upload(service, gradient(6000, 4000))  # 24 MP: a camera's photograph
    assert r.status_code == 201, r.text
    body = await service.eventually(lambda: processed(service, r.json()["media_id"]), timeout=120)  # a busy host
    assert body["status"] == "processed", body
    assert (body["width"], body["height"]) == (6000, 4000)
    assert [x["name"] for x in body["renditions"]] == ["thumb", "small", "medium", "large"]


async def test_a_worker_out_of_memory_fails_that_image_only() -> None:
    """A worker whose address space is too small for the image: that image is refused with a reason,
    the service's process is untouched, and the next image is processed by a fresh worker."""
    tight = ImageWorkers(memory_limit=64 * 1024 * 1024)
    try:
        with pytest.raises(UploadRejected, match=r"more memory|limits of a worker"):
            await tight.renditions(gradient(5000, 5000), "image/jpeg")
    finally:
        tight.close()
    workers = ImageWorkers()
    try:
        size, made = await workers.renditions(gradient(640, 480), "image/jpeg")
        assert size == (640, 480) and [m.name for m in made] == ["thumb", "small", "medium"]
        # concurrent callers take turns on the one process
        results = await asyncio.gather(*(workers.renditions(gradient(320, 200), "image/jpeg") for _ in range(3)))
        assert [r[0] for r in results] == [(320, 200)] * 3
    finally:
        workers.close()


async def test_decoding_runs_in_another_process_which_stops_with_the_service() -> None:
    workers = ImageWorkers()
    try:
        loop = asyncio.get_running_loop()
        pid = await loop.run_in_executor(workers._executor(), os.getpid)
        assert pid != os.getpid()
    finally:
        await workers.aclose()  # what the media service's stop does (ServiceRuntime's on_stop)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
