"""Start-up, graceful shutdown (long polls answer at once, nothing acknowledged is lost), test mode."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from server_harness import CREDENTIALS, REGION, free_port, start_server


def client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


def test_graceful_shutdown_returns_long_polls_and_keeps_messages(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    sqs = client(server.endpoint)
    url = sqs.create_queue(QueueName="durable")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    empty = sqs.create_queue(QueueName="empty")["QueueUrl"]
    polled: dict[str, Any] = {}

    def long_poll() -> None:
        start = time.monotonic()
        polled["response"] = sqs.receive_message(QueueUrl=empty, WaitTimeSeconds=20)
        polled["took"] = time.monotonic() - start

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert server.stop() in (0, -15)  # uvicorn re-raises the SIGTERM it handled, after the graceful shutdown
    assert time.monotonic() - started < 10
    poller.join(10)
    assert "Messages" not in polled["response"] and polled["took"] < 10

    again = start_server(tmp_path / "data")
    try:
        sqs = client(again.endpoint)
        attrs = sqs.get_queue_attributes(
            QueueUrl=url.replace(str(server.port), str(again.port)), AttributeNames=["All"]
        )
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "10"
    finally:
        again.stop()


def test_reset_only_in_test_mode(tmp_path: Path) -> None:
    plain = start_server(tmp_path / "plain")
    try:
        client(plain.endpoint).create_queue(QueueName="kept")
        request = urllib.request.Request(plain.endpoint + "/moto-api/reset", data=b"", method="POST")
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=5)
        assert client(plain.endpoint).list_queues()["QueueUrls"]
    finally:
        plain.stop()
    testing = start_server(tmp_path / "testing", "--test-mode")
    try:
        client(testing.endpoint).create_queue(QueueName="wiped")
        request = urllib.request.Request(testing.endpoint + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        assert "QueueUrls" not in client(testing.endpoint).list_queues()
    finally:
        testing.stop()


def test_sigterm_under_load_loses_no_acknowledged_send(tmp_path: Path) -> None:
    """Senders keep sending while SIGTERM arrives: every send answered 200 is in the queue after a restart,
    and long polls in two regions return at once."""
    server = start_server(tmp_path / "data")
    sqs = client(server.endpoint)
    url = sqs.create_queue(QueueName="loaded")["QueueUrl"]
    west = boto3.client("sqs", endpoint_url=server.endpoint, region_name="us-west-2", **CREDENTIALS)
    west_empty = west.create_queue(QueueName="west-empty")["QueueUrl"]
    acknowledged = [0, 0]
    polls: list[float] = []

    def sender(index: int) -> None:
        own = client(server.endpoint)
        while True:
            try:
                own.send_message(QueueUrl=url, MessageBody=f"{index}")
            except Exception:
                return
            acknowledged[index] += 1

    def poller() -> None:
        start = time.monotonic()
        with contextlib.suppress(Exception):
            west.receive_message(QueueUrl=west_empty, WaitTimeSeconds=20)
        polls.append(time.monotonic() - start)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(2)] + [threading.Thread(target=poller)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert server.stop() in (0, -15)
    for thread in threads:
        thread.join(15)
    assert polls and polls[0] < 10
    assert sum(acknowledged) > 0

    again = start_server(tmp_path / "data")
    try:
        attrs = client(again.endpoint).get_queue_attributes(
            QueueUrl=url.replace(str(server.port), str(again.port)), AttributeNames=["ApproximateNumberOfMessages"]
        )
        stored = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        # A send may have committed while its answer was cut off by the shutdown (at most one per sender).
        assert sum(acknowledged) <= stored <= sum(acknowledged) + 2, (acknowledged, stored)
    finally:
        again.stop()


def test_responses_leave_with_tcp_nodelay(tmp_path: Path) -> None:
    """uvicorn runs on uvloop, whose TCP transports set TCP_NODELAY: headers and body (two writes) never wait
    for a delayed ACK."""
    import asyncio
    import socket

    import uvloop

    from scte.queue.server.config import ServerConfig
    from scte.queue.server.serve import build_server

    server = build_server(ServerConfig(port=free_port(), data_dir=tmp_path / "data"), log_level="warning")
    factory = server.config.get_loop_factory()
    assert factory is not None
    loop = factory()
    assert isinstance(loop, uvloop.Loop)
    loop.close()

    async def main() -> list[int]:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        flags = [
            c.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            for c in server.server_state.connections
        ]
        writer.close()
        server.should_exit = True
        await task
        return flags

    flags = uvloop.run(main())
    assert flags and all(flags), flags
