"""Media's `/health` while images are processed: decoding in a thread of the service (before) against
a bounded worker process with the 25 MP budget (after).

    python bench/media_health.py [--before-src PATH]    # JSON on stdout, progress on stderr

For each variant (this checkout's `src`; with `--before-src` an older checkout's, e.g. a `git worktree`
at the commit before the change), a service process (`scte.kit.app.create_app`, uvicorn on loopback)
whose POST /process makes the renditions of an image the way that checkout's media worker does: in
`ImageWorkers` when the checkout has them, else `asyncio.to_thread(make_renditions)`. While it runs,
this process asks GET /health every 20 ms (a fresh connection each time, 30 s timeout) and records the
latencies (and, just before, 20 requests with nothing to process: the machine's floor). Two
workloads, each with a fresh service process so its peak RSS (VmHWM) is the workload's:

- the decompression bomb of the issue: a 38 KB PNG of 6320 x 6320 pixels;
- three camera-sized photographs in a row (6000 x 4000 JPEG, 24 MP: within the budget).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from conditions import Conditions, peak_rss_mb

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

SERVER = textwrap.dedent(
    """
    import asyncio, sys, uvicorn
    from fastapi import APIRouter
    from scte.kit.app import create_app
    from scte.services.media.domain import UploadRejected
    try:
        from scte.services.media.workers import ImageWorkers
        workers = ImageWorkers()
        async def renditions(data, content_type):
            return await workers.renditions(data, content_type)
        mode = "worker process"
    except ImportError:
        from scte.services.media.processing import make_renditions
        async def renditions(data, content_type):
            return await asyncio.to_thread(make_renditions, data, content_type)
        mode = "thread"

    router = APIRouter()

    @router.post("/process")
    async def process(path: str, content_type: str, times: int = 1) -> dict:
        data = open(path, "rb").read()
        outcomes = []
        for _ in range(times):
            try:
                size, made = await renditions(data, content_type)
                outcomes.append(f"processed {size}, {len(made)} renditions")
            except UploadRejected as exc:
                outcomes.append(f"refused: {exc}")
        return {"mode": mode, "outcomes": outcomes}

    uvicorn.run(create_app("media-bench", [router]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _images(directory: Path) -> dict[str, tuple[Path, str, int]]:
    bomb = directory / "bomb.png"
    Image.new("L", (6320, 6320), 0).save(bomb, "PNG", optimize=True)
    photo = directory / "photo.jpg"
    Image.linear_gradient("L").resize((6000, 4000)).convert("RGB").save(photo, "JPEG", quality=85)
    return {"bomb_6320x6320_png": (bomb, "image/png", 1), "photos_3x_24MP_jpeg": (photo, "image/jpeg", 3)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _process(base: str, params: dict[str, str | int], answer: dict[str, Any]) -> None:
    started = time.perf_counter()
    answer.update(httpx.post(base + "/process", params=params, timeout=600).json())
    answer["seconds"] = round(time.perf_counter() - started, 2)


def run_variant(src: Path, images: dict[str, tuple[Path, str, int]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (path, content_type, times) in images.items():
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env={**os.environ, "PYTHONPATH": str(src)})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the bench service did not start")
                time.sleep(0.1)
            idle: list[float] = []
            for _ in range(20):  # the machine's own floor, measured just before
                started = time.perf_counter()
                httpx.get(base + "/health", timeout=30)
                idle.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)
            answer: dict[str, Any] = {}
            params: dict[str, str | int] = {"path": str(path), "content_type": content_type, "times": times}
            worker = threading.Thread(target=_process, args=(base, params, answer))
            worker.start()
            latencies: list[float] = []
            failures = 0
            while worker.is_alive():
                started = time.perf_counter()
                try:
                    ok = httpx.get(base + "/health", timeout=30).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                failures += not ok
                time.sleep(0.02)
            worker.join()
            results[name] = {
                "mode": answer.get("mode"),
                "outcome": answer.get("outcomes", [None])[0],
                "processing_seconds": answer.get("seconds"),
                "idle_health_p50_ms": round(statistics.median(idle), 1),
                "idle_health_max_ms": round(max(idle), 1),
                "health_requests": len(latencies),
                "health_failures": failures,
                "health_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                "health_p99_ms": round(_percentile(latencies, 0.99), 1) if latencies else None,
                "health_max_ms": round(max(latencies), 1) if latencies else None,
                "service_peak_rss_mb": peak_rss_mb(server.pid),
            }
            print(f"{src}: {name}: {results[name]}", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(60)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", type=Path, help="the src directory of an older checkout, for comparison")
    args = parser.parse_args()
    variants = {"after": SRC}
    if args.before_src:
        variants = {"before": args.before_src.resolve(), **variants}
    conditions = Conditions()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        images = _images(Path(directory))
        for name, src in variants.items():
            with conditions.side(name):
                report[name] = {"src": str(src), **run_variant(src, images)}
    report["conditions"] = conditions.report()
    conditions.say()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
