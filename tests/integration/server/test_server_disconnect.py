"""A long-poll client that goes away does not hide messages from the others."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import psutil
from tests.integration.server.server_harness import Server  # noqa: F401 - fixture type


def _start_long_poll(endpoint: str, queue_url: str) -> socket.socket:
    """Send a raw JSON ReceiveMessage with a 20 s wait and leave it waiting (no response read)."""
    url = urlparse(endpoint)
    body = json.dumps({"QueueUrl": queue_url, "WaitTimeSeconds": 20, "MaxNumberOfMessages": 10}).encode()
    request = (
        f"POST / HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: AmazonSQS.ReceiveMessage\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.sendall(request)
    return sock


def _until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll `condition` (a loaded machine is slow, which is not a failure) until true or `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.01)


def _server_holds(server: Any, sock: socket.socket) -> bool:
    """The server process has accepted this client's connection (its request is then read at once)."""
    port = sock.getsockname()[1]
    connections = psutil.Process(server.process.pid).net_connections(kind="tcp")
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in connections)


def _abandoned_receives(server: Any) -> int:
    """ReceiveMessage calls the server cancelled because their client went away (status 499 in /metrics)."""
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.search(r'^scte_requests_total\{action="ReceiveMessage",status="499"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_disconnected_long_poll_leaves_later_messages_visible(server: Any, sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName=f"disconnect-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    abandoned = _abandoned_receives(server)
    sock = _start_long_poll(server.endpoint, queue_url)
    _until(lambda: _server_holds(server, sock), "the server accepts the long poll")
    sock.close()  # the consumer goes away (stopped, killed, timed out)
    # the server noticed and cancelled the poll (which shows the poll had started)
    _until(lambda: _abandoned_receives(server) == abandoned + 1, "the abandoned poll is answered 499")
    sqs.send_message(QueueUrl=queue_url, MessageBody="after the disconnect")
    # Had the abandoned poll still been waiting, it would have taken the message and hidden it for
    # the queue's visibility timeout (30 s); it is there for the next consumer at once.
    got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in got] == ["after the disconnect"]


def test_a_waiting_long_poll_still_gets_its_message(server: Any, sqs: Any) -> None:
    # The disconnect watch must not disturb a client that stays: it receives what is sent meanwhile.
    queue_url = sqs.create_queue(QueueName=f"stay-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sock = _start_long_poll(server.endpoint, queue_url)
    try:
        _until(lambda: _server_holds(server, sock), "the server accepts the long poll")
        sqs.send_message(QueueUrl=queue_url, MessageBody="for the waiting poll")
        sock.settimeout(5)
        data = b""
        while b"for the waiting poll" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()
