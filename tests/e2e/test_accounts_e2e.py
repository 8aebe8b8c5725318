"""Accounts through the running system: no shared credential (the staff password shown once by
`scte up`, stored nowhere; demo members cannot sign in), sign-in and registration limits by the
visitor's real address (429 with Retry-After), as the gateway states it.

Visitors come from their own loopback addresses (127.0.0.x: every one reaches the gateway on
127.0.0.1), so each test has its own per-address counts and the other tests keep theirs.
"""

from __future__ import annotations

import asyncio
import re
import stat
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from scte.kit.auth import TokenIssuer
from scte.kit.forwarding import GATEWAY_SECRET_HEADER

from .conftest import Platform

PASSWORD = "a long enough passphrase 42"
OLD_DEMO_PASSWORD = "scte-demo-password-2026"


@asynccontextmanager
async def visitor(platform: Platform, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from `address` (a loopback address other than 127.0.0.1)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=platform.url, transport=transport, timeout=60) as client:
        yield client


async def register(client: httpx.AsyncClient, email: str | None = None) -> httpx.Response:
    email = email or f"{uuid.uuid4().hex[:10]}@e2e.example"
    return await client.post(
        "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": "Lim Ited"}
    )


def files_holding(directory: Path, secret: str) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


async def test_the_staff_password_is_shown_once_and_stored_nowhere(platform: Platform) -> None:
    log = (platform.data_dir.parent / "scte-up.log").read_text()
    shown = re.findall(r"staff sign-in: (\S+)\s+password: (\S+)", log)
    assert len(shown) == 1, log[-3000:]
    email, password = shown[0]
    assert email == "staff@scte.example" and len(password) >= 24
    assert log.count(password) == 1
    async with platform.client() as client:
        signed = await client.post("/api/members/sessions", json={"email": email, "password": password})
        assert signed.status_code == 200, signed.text
        assert "staff" in signed.json()["roles"]
        old = await client.post("/api/members/sessions", json={"email": email, "password": OLD_DEMO_PASSWORD})
        assert old.status_code == 401
    assert not await asyncio.to_thread(files_holding, platform.data_dir, password)
    marker = platform.data_dir / ".seeded"
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    assert password not in marker.read_text() and OLD_DEMO_PASSWORD not in marker.read_text()
    secret = platform.data_dir / "keys" / "gateway-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


async def test_demo_members_cannot_sign_in(platform: Platform) -> None:
    token = TokenIssuer.from_file(platform.data_dir / "keys" / "jwt-ed25519.pem").issue(
        "e2e-staff", ["member", "staff"]
    )
    async with platform.client(token) as client:
        page = (await client.get("/api/members/members", params={"limit": 5})).json()["items"]
    demo = [m for m in page if m["email"].endswith("@members.example")]
    assert demo, page
    async with visitor(platform, "127.0.0.21") as client:
        for member in demo[:2]:
            body = {"email": member["email"], "password": OLD_DEMO_PASSWORD}
            assert (await client.post("/api/members/sessions", json=body)).status_code == 401


async def test_registrations_are_limited_per_visitor_address(platform: Platform) -> None:
    async with visitor(platform, "127.0.0.23") as flooder, visitor(platform, "127.0.0.24") as neighbour:
        statuses = [(await register(flooder)).status_code for _ in range(50)]
        assert statuses == [201] * 50
        refused = await register(flooder)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        # claiming another address does not help: the gateway states the real one
        spoofed = await flooder.post(
            "/api/members/members",
            json={"email": f"{uuid.uuid4().hex[:10]}@e2e.example", "password": PASSWORD, "display_name": "Spoof"},
            headers={"X-Forwarded-For": "127.0.0.24", GATEWAY_SECRET_HEADER: "guessed"},
        )
        assert spoofed.status_code == 429
        assert (await register(neighbour)).status_code == 201
