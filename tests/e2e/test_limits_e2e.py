"""Abuse limits on the running platform: request bodies refused before they are buffered (the gateway
and a service, by Content-Length at once), and the decompression-bomb PNG refused while media's
`/health` keeps answering."""

from __future__ import annotations

import io
import socket
import urllib.parse
import uuid

import httpx
from PIL import Image

from .conftest import Platform
from .processes import eventually

MIB = 1024 * 1024
PASSWORD = "a long enough passphrase 42"


def _refused_at_once(url: str, path: str, content_type: str, size: int) -> str:
    """POST with a Content-Length of `size` and no body at all: the answer must come without it."""
    parts = urllib.parse.urlsplit(url)
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Length: {size}\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1").split("\r\n", 1)[0]


def test_large_bodies_are_refused_by_their_content_length(platform: Platform) -> None:
    members = platform.registry()["children"]["members"]["health"].removesuffix("/health")
    assert _refused_at_once(platform.url, "/api/media/media", "multipart/form-data; boundary=b", 200 * MIB).startswith(
        "HTTP/1.1 413"
    )
    assert _refused_at_once(platform.url, "/api/members/members", "application/json", 50 * MIB).startswith(
        "HTTP/1.1 413"
    )
    assert _refused_at_once(members, "/members", "application/json", 50 * MIB).startswith("HTTP/1.1 413")
    with httpx.Client(timeout=30) as client:
        assert client.get(platform.url + "/health").status_code == 200


def _bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (6320, 6320), 0).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def test_the_decompression_bomb_is_refused_and_media_stays_healthy(platform: Platform) -> None:
    media_health = platform.registry()["children"]["media"]["health"]
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    with httpx.Client(base_url=platform.url, timeout=30) as anonymous:
        created = anonymous.post(
            "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": "Bo Bomb"}
        )
        assert created.status_code == 201, created.text
        signed_in = anonymous.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
    healths: list[int] = []
    with httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        upload = client.post("/api/media/media", files={"file": ("bomb.png", _bomb(), "image/png")})
        assert upload.status_code == 201, upload.text
        media_id = upload.json()["media_id"]

        def done() -> dict[str, object] | None:
            healths.append(httpx.get(media_health, timeout=30).status_code)
            body = client.get(f"/api/media/media/{media_id}").json()
            return body if body["status"] in ("processed", "failed") else None

        body = eventually(done, "the bomb processed", timeout=120)
    assert body["status"] == "failed" and "more than 25000000 pixels" in str(body["error"])
    assert set(healths) == {200}
