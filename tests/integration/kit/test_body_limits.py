"""Request bodies are limited before they are buffered, in the gateway and in each service (issue:
a 200 MiB upload was refused only after the gateway had read it all, at 492 MB; a 50 MiB JSON body was
read in full). Real servers on loopback, raw HTTP from the client side:

- a Content-Length above the route's limit is answered 413 without one byte of the body being sent;
- a chunked body is answered 413 once it passes the limit, long before the client has sent it all,
  and the gateway's peak memory stays far below the body's size;
- bodies within the limits pass the gateway, streamed, whole.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scte.kit.app import MAX_BODY_SIZE, MAX_UPLOAD_BODY_SIZE

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Servers:
    upstream: str
    gateway: str
    upstream_port: int
    gateway_port: int
    gateway_pid: int

    def received(self) -> int:
        with urllib.request.urlopen(self.upstream + "/received", timeout=10) as response:
            return int(json.loads(response.read())["media"])


def _serve(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    return subprocess.Popen([sys.executable, str(HERE / "limits_servers.py"), *args], env=env)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    upstream_port, gateway_port = _free_port(), _free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    upstream = _serve("upstream", str(upstream_port))
    gateway = _serve("gateway", str(gateway_port), upstream_url)
    try:
        _wait_listening(upstream_port, upstream)
        _wait_listening(gateway_port, gateway)
        yield Servers(upstream_url, f"http://127.0.0.1:{gateway_port}", upstream_port, gateway_port, gateway.pid)
    finally:
        for process in (gateway, upstream):
            process.terminate()
            process.wait(30)


def _status_line(sock: socket.socket, timeout: float = 60.0) -> str:
    """The response's status line (and the headers and body that came with it), as text."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def _head(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *headers]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("target", "path", "content_type", "size"),
    [
        ("gateway", "/api/media/media", "multipart/form-data; boundary=x", 200 * MIB),
        ("gateway", "/api/members/members", "application/json", 50 * MIB),
        ("upstream", "/media", "multipart/form-data; boundary=x", 200 * MIB),
        ("upstream", "/members", "application/json", 50 * MIB),
    ],
)
def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(
    servers: Servers, target: str, path: str, content_type: str, size: int
) -> None:
    port = servers.gateway_port if target == "gateway" else servers.upstream_port
    before = servers.received()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(path, f"Content-Type: {content_type}", f"Content-Length: {size}"))
        answer = _status_line(sock)  # not one byte of the body sent
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert answer.split("\r\n\r\n", 1)[1] == "Content Too Large"  # Starlette's own answer, before any route
    assert servers.received() == before  # the gateway did not pass any of it on


@pytest.mark.parametrize(
    ("target", "path", "limit"),
    [
        ("gateway", "/api/media/media", MAX_UPLOAD_BODY_SIZE),
        ("gateway", "/api/members/members", MAX_BODY_SIZE),
        ("upstream", "/media", MAX_UPLOAD_BODY_SIZE),
        ("upstream", "/members", MAX_BODY_SIZE),
    ],
)
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    servers: Servers, target: str, path: str, limit: int
) -> None:
    """200 MiB offered in 1 MiB chunks; the client stops sending when the answer arrives."""
    port = servers.gateway_port if target == "gateway" else servers.upstream_port
    chunk = b"x" * MIB
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    answer = ""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(_head(path, "Content-Type: application/octet-stream", "Transfer-Encoding: chunked"))
        while sent < 200 * MIB:
            readable, writable, _ = select.select([sock], [sock], [], 60)
            if readable:
                answer = _status_line(sock)
                break
            assert writable, "the server neither reads nor answers"
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                answer = _status_line(sock)
                break
            sent += len(chunk)
    assert answer.startswith("HTTP/1.1 413"), (sent, answer[:300])
    refusal = json.loads(answer.split("\r\n\r\n", 1)[1])
    assert refusal == {"error": "request_entity_too_large", "message": "Content Too Large"}  # the uniform body
    assert sent < 200 * MIB
    assert sent >= limit  # it was the size that was refused, not the first chunk


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_the_gateway_streams_bodies_and_its_memory_stays_bounded(servers: Servers) -> None:
    """Bodies within the limit reach the service whole, streamed (with a Content-Length and chunked);
    after a 200 MiB upload is refused, the gateway's peak memory is far below 200 MiB."""
    payload = os.urandom(20 * MIB)
    with httpx.Client(base_url=servers.gateway, timeout=120) as client:
        before = servers.received()
        fixed = client.post("/api/media/media", content=payload, headers={"content-type": "image/png"})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json() == {"received": len(payload)}

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(payload), MIB):
                yield payload[start : start + MIB]

        streamed = client.post("/api/media/media", content=chunks(), headers={"content-type": "image/png"})
        assert streamed.status_code == 200, streamed.text
        assert streamed.json() == {"received": len(payload)}
        assert servers.received() == before + 2 * len(payload)

        def large() -> Iterator[bytes]:
            block = b"y" * MIB
            for _ in range(200):
                yield block

        try:
            refused = client.post("/api/media/media", content=large(), headers={"content-type": "image/png"})
            assert refused.status_code == 413, refused.text
        except httpx.TransportError:
            pass  # the server answered and closed while the client was still writing: refused just the same
        small = client.post("/api/members/members", json={"name": "Ada"})
        assert small.status_code == 200 and small.json() == {"name": "Ada"}
    assert _peak_rss(servers.gateway_pid) < 150 * MIB
