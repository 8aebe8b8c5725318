"""The HTTP/1.1 layer (`server/http.py`): what uvicorn's ASGI cycle did and the protocol must keep doing.

The server runs in-process (a thread with its own uvloop loop, as `scte queue serve` builds it), so the body
timeout and the keep-alive period can be shortened; the tests speak raw HTTP over sockets.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from tests.integration.server.server_harness import free_port

from scte.queue.server import http
from scte.queue.server.app import MAX_BODY_BYTES
from scte.queue.server.config import ServerConfig
from scte.queue.server.serve import DrainingServer, build_server

# Tests of the speed path itself: `make test-slow-path` (SCTE_SPEED_PATHS=off) deselects them.
pytestmark = pytest.mark.speed_path

JSON_TYPE = "application/x-amz-json-1.0"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DrainingServer]:
    monkeypatch.setattr(http, "BODY_TIMEOUT_SECONDS", 0.5)
    server = build_server(ServerConfig(port=free_port(), data_dir=tmp_path / "data"), log_level="warning")
    server.config.timeout_keep_alive = 1
    thread = threading.Thread(target=uvloop.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield server
    server.should_exit = True
    thread.join(30)


def connect(server: DrainingServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.config.port), timeout=5)


def sqs_request(action: str, payload: dict[str, object], *extra: str) -> bytes:
    body = json.dumps(payload).encode()
    head = [
        "POST / HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {JSON_TYPE}",
        f"X-Amz-Target: AmazonSQS.{action}",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from `sock` (bytes past it stay in `buffer`)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {bytes(buffer)!r}"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    del buffer[: end + 4]
    while len(buffer) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return int(lines[0].split()[1]), headers, body


def closed(sock: socket.socket, within: float = 5) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_pipelined_requests_are_answered_in_order(served: DrainingServer) -> None:
    name = f"pipe-{uuid.uuid4().hex[:8]}"
    with connect(served) as sock:
        sock.sendall(
            sqs_request("CreateQueue", {"QueueName": name})
            + sqs_request("GetQueueUrl", {"QueueName": name})
            + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            + sqs_request("GetQueueUrl", {"QueueName": "nope"})
        )
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 400]
    assert json.loads(answers[0][2])["QueueUrl"] == json.loads(answers[1][2])["QueueUrl"]
    assert json.loads(answers[2][2]) == {"status": "ok"}
    assert answers[3][1]["x-amzn-query-error"].startswith("AWS.SimpleQueueService.NonExistentQueue")
    request_ids = [headers["x-amzn-requestid"] for _, headers, _ in (answers[0], answers[1], answers[3])]
    assert len(set(request_ids)) == 3 and all(len(uuid.UUID(r).hex) == 32 for r in request_ids)
    assert all("date" in headers for _, headers, _ in answers)


def test_expect_100_continue(served: DrainingServer) -> None:
    request = sqs_request("ListQueues", {}, "Expect: 100-continue")
    head, body = request.split(b"\r\n\r\n", 1)
    with connect(served) as sock:
        sock.sendall(head + b"\r\n\r\n")
        buffer = bytearray()
        assert read_response(sock, buffer)[0] == 100
        sock.sendall(body)
        assert read_response(sock, buffer)[0] == 200


def test_head_has_no_body_and_http10_closes(served: DrainingServer) -> None:
    with connect(served) as sock:
        sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.0\r\n\r\n")
        buffer = bytearray()
        sock.settimeout(5)
        while buffer.count(b"HTTP/1.1 200") < 2 or not buffer.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk
            buffer += chunk
        first, second = bytes(buffer).split(b"HTTP/1.1 200", 2)[1:]
        assert b"content-length: 16" in first and first.endswith(b"\r\n\r\n")  # the length, not the body
        assert b"connection: close" in second and second.endswith(b'{"status": "ok"}')
        assert closed(sock)


def test_a_slow_body_is_408_and_the_connection_closes(served: DrainingServer) -> None:
    with connect(served) as sock:
        sock.sendall(sqs_request("ListQueues", {"QueueNamePrefix": "x" * 50})[:-20])  # 20 bytes never come
        buffer = bytearray()
        status, headers, body = read_response(sock, buffer)
        assert status == 408 and json.loads(body)["__type"].endswith("RequestTimeoutException")
        assert headers["connection"] == "close" and closed(sock)


def test_a_chunked_body_past_the_limit_is_413(served: DrainingServer) -> None:
    chunk = b"x" * (1024 * 1024)
    with connect(served) as sock:
        head = (
            f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {JSON_TYPE}\r\nX-Amz-Target: AmazonSQS.SendMessage\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        sock.sendall(head)
        for _ in range(MAX_BODY_BYTES // len(chunk) + 1):
            sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        buffer = bytearray()
        status, _, body = read_response(sock, buffer)
        assert status == 413 and json.loads(body)["__type"].endswith("RequestEntityTooLargeException")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection still serves
        assert read_response(sock, buffer)[0] == 200


def test_idle_connections_close_after_the_keep_alive_period(served: DrainingServer) -> None:
    with connect(served) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock, bytearray())[0] == 200
        started = time.monotonic()
        assert closed(sock)
        assert 0.5 < time.monotonic() - started < 4


def test_malformed_http_is_400_and_closes(served: DrainingServer) -> None:
    with connect(served) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, _, body = read_response(sock, bytearray())
        assert status == 400 and body == b"Invalid HTTP request received." and closed(sock)


def test_a_long_poll_that_loses_its_client_counts_499(served: DrainingServer) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    with connect(served) as sock:
        sock.sendall(sqs_request("CreateQueue", {"QueueName": name}))
        url = json.loads(read_response(sock, bytearray())[2])["QueueUrl"]
    with connect(served) as sock:
        sock.sendall(sqs_request("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20}))
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while True:
        with connect(served) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            metrics = read_response(sock, bytearray())[2].decode()
        if 'scte_requests_total{action="ReceiveMessage",status="499"} 1.0' in metrics:
            break
        assert time.monotonic() < deadline, metrics
        time.sleep(0.1)
