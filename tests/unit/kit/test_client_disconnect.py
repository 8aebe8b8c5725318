"""A client that hangs up in the middle of its body (as the gateway does when it refuses a body over
the limit) is not a server error: no 500, nothing logged as an unhandled error."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import APIRouter, Request

from scte.kit.app import create_app

router = APIRouter()


@router.post("/stream")
async def stream(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


async def test_a_disconnect_mid_body_is_answered_without_an_unhandled_error(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app("demo", [router])
    messages = iter([{"type": "http.request", "body": b"x" * 100, "more_body": True}, {"type": "http.disconnect"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/stream",
        "raw_path": b"/stream",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
