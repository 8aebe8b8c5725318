"""Sessions through the running system (`scte up`): a password reset by real mail, and a password
change, each revoke the member's sessions at every service; sign-out and refresh through the gateway."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx

from .conftest import Platform

PASSWORD = "a long enough passphrase 42"
NEW_PASSWORD = "quite another passphrase 77"


async def _member(client: httpx.AsyncClient) -> tuple[str, str, dict[str, Any]]:
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    created = await client.post(
        "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": "Session Tester"}
    )
    assert created.status_code == 201, created.text
    signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    return created.json()["id"], email, dict(signed.json())


async def _refused_everywhere(platform: Platform, member_id: str, token: str, timeout: float = 10.0) -> None:
    """The token is refused by members and by services that learn of it from the event."""
    paths = (
        "/api/members/me",
        f"/api/certification/members/{member_id}/certifications",
        f"/api/commerce/members/{member_id}/orders",
        f"/api/learning/members/{member_id}/transcript",
    )
    deadline = time.monotonic() + timeout
    async with platform.client(token) as client:
        waiting = set(paths)
        while waiting and time.monotonic() < deadline:
            for path in sorted(waiting):
                r = await client.get(path)
                if r.status_code == 401:
                    assert "revoked" in r.json()["message"], r.text
                    waiting.discard(path)
            await asyncio.sleep(0.05)
    assert not waiting, f"still let in after {timeout} s: {sorted(waiting)}"


async def test_a_password_reset_by_mail_revokes_every_session(platform: Platform) -> None:
    async with platform.client() as client:
        member_id, email, tokens = await _member(client)
        asked = await client.post("/api/members/password-resets", json={"email": email})
        nobody = await client.post("/api/members/password-resets", json={"email": f"nobody-{email}"})
        assert asked.status_code == nobody.status_code == 202 and asked.json() == nobody.json()

        mail = await platform.wait_for_mail(email, lambda m: "password" in m.subject.lower(), timeout=60)
        link = re.search(r"(\S+/password-reset\?token=\S+)", mail.body)
        assert link is not None, mail.body
        assert link.group(1).startswith(f"{platform.url}/password-reset?token=")
        token = link.group(1).split("token=", 1)[1]

        done = await client.post(
            "/api/members/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert done.status_code == 200, done.text
        again = await client.post(
            "/api/members/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert again.status_code == 400 and "used already" in again.json()["message"]
        await _refused_everywhere(platform, member_id, tokens["access_token"])
        old = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401
        new = await client.post("/api/members/sessions", json={"email": email, "password": NEW_PASSWORD})
        assert new.status_code == 200, new.text
    assert not [m for m in platform.mails(f"nobody-{email}")]


async def test_refresh_sign_out_and_password_change_through_the_gateway(platform: Platform) -> None:
    async with platform.client() as client:
        member_id, email, tokens = await _member(client)
        refreshed = await client.post("/api/members/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        pair = refreshed.json()
        out = await client.post("/api/members/sessions/sign-out", json={"refresh_token": pair["refresh_token"]})
        assert out.status_code == 204
        await _refused_everywhere(platform, member_id, pair["access_token"])

        signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 200
        laptop = signed.json()
        changed = await client.post(
            f"/api/members/members/{member_id}/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {laptop['access_token']}"},
        )
        assert changed.status_code == 200, changed.text
        await _refused_everywhere(platform, member_id, laptop["access_token"])
    async with platform.client(changed.json()["access_token"]) as client:
        assert (await client.get(f"/api/commerce/members/{member_id}/orders")).status_code == 200
