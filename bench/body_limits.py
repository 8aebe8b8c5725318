"""Request bodies over the limit: how fast they are answered and what the gateway holds meanwhile.

    python bench/body_limits.py [--before-src PATH]    # JSON on stdout, progress on stderr

For each variant (this checkout's `src`, and with `--before-src` an older checkout's `src`, e.g. a
`git worktree` at the commit before the limits), a service made by `scte.kit.app.create_app` (POST
/members with a JSON model, POST /media reading an upload) and the gateway (`create_gateway`) routing
`members` and `media` to it, each its own process on loopback. Three requests through the gateway,
each with a fresh gateway process so its peak memory (VmHWM) is that request's:

- a 200 MiB upload with a Content-Length (POST /api/media/media),
- the same 200 MiB chunked (no Content-Length),
- a 50 MiB JSON body (POST /api/members/members).

Measured: the status, the seconds from the first byte sent to the answer, and the gateway's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from conditions import Conditions, peak_rss_mb

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

UPSTREAM = textwrap.dedent(
    """
    import sys, uvicorn
    from fastapi import APIRouter, Request
    from pydantic import BaseModel
    import scte.kit.app as kit

    router = APIRouter()

    class Member(BaseModel):
        name: str

    @router.post("/members")
    async def register(member: Member) -> dict:
        return {"name": member.name}

    limit = getattr(kit, "MAX_UPLOAD_BODY_SIZE", None)

    @router.post("/media", **({"max_body_size": limit} if limit else {}))
    async def upload(request: Request) -> dict:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"received": size}

    uvicorn.run(kit.create_app("demo", [router]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)
GATEWAY = textwrap.dedent(
    """
    import sys, uvicorn
    from scte.web.gateway import create_gateway
    app = create_gateway({"members": sys.argv[2], "media": sys.argv[2]})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(code: str, src: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env)


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing on port {port}")


def _blocks(total: int) -> Iterator[bytes]:
    block = b"x" * MIB
    for _ in range(total // MIB):
        yield block


def _request(url: str, case: str) -> tuple[int | str, float]:
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=300) as client:
            if case == "upload_200MiB_content_length":
                headers = {"content-type": "application/octet-stream", "content-length": str(200 * MIB)}
                response = client.post(url + "/api/media/media", content=_blocks(200 * MIB), headers=headers)
            elif case == "upload_200MiB_chunked":
                headers = {"content-type": "application/octet-stream"}
                response = client.post(url + "/api/media/media", content=_blocks(200 * MIB), headers=headers)
            else:
                body = b'{"name": "' + b"x" * (50 * MIB) + b'"}'
                response = client.post(
                    url + "/api/members/members", content=body, headers={"content-type": "application/json"}
                )
            status: int | str = response.status_code
    except httpx.TransportError as exc:  # the server answered and closed while the client was still writing
        status = f"{type(exc).__name__} (connection closed by the server)"
    return status, round(time.perf_counter() - started, 3)


def run_variant(src: Path) -> dict[str, Any]:
    upstream_port = _free_port()
    upstream = _start(UPSTREAM, src, str(upstream_port))
    results: dict[str, Any] = {}
    try:
        _wait(upstream_port)
        for case in ("upload_200MiB_content_length", "upload_200MiB_chunked", "json_50MiB"):
            gateway_port = _free_port()
            gateway = _start(GATEWAY, src, str(gateway_port), f"http://127.0.0.1:{upstream_port}")
            try:
                _wait(gateway_port)
                idle = peak_rss_mb(gateway.pid)
                status, seconds = _request(f"http://127.0.0.1:{gateway_port}", case)
                results[case] = {
                    "status": status,
                    "seconds": seconds,
                    "gateway_peak_rss_mb": peak_rss_mb(gateway.pid),
                    "gateway_idle_rss_mb": idle,
                }
                print(f"{src}: {case}: {results[case]}", file=sys.stderr)
            finally:
                gateway.terminate()
                gateway.wait(30)
    finally:
        upstream.terminate()
        upstream.wait(30)
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
    for name, src in variants.items():
        with conditions.side(name):
            report[name] = {"src": str(src), **run_variant(src)}
    report["conditions"] = conditions.report()
    conditions.say()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
