"""Start-up, graceful shutdown (long polls answer at once, nothing acknowledged is lost), test mode."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from server_harness import CREDENTIALS, REGION, start_server


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
