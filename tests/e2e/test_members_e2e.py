"""Members through the running system: register, sign in, own records only, dues -> membership renewed."""

from __future__ import annotations

import asyncio
import time
import uuid

from .conftest import Platform

PASSWORD = "a long enough passphrase 42"


async def register_and_sign_in(platform: Platform, name: str = "E2E Member") -> tuple[str, str, str]:
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    async with platform.client() as client:
        created = await client.post(
            "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": name}
        )
        assert created.status_code == 201, created.text
        signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
    return created.json()["id"], email, signed.json()["access_token"]


async def test_register_sign_in_and_read_own_profile(platform: Platform) -> None:
    member_id, email, token = await register_and_sign_in(platform)
    async with platform.client(token) as client:
        own = await client.get(f"/api/members/members/{member_id}")
        assert own.status_code == 200
        assert own.json()["email"] == email
        changed = await client.patch(f"/api/members/members/{member_id}", json={"city": "Exton"})
        assert changed.status_code == 200 and changed.json()["city"] == "Exton"


async def test_one_member_cannot_read_another(platform: Platform) -> None:
    _jane, _, jane_token = await register_and_sign_in(platform, "Jane")
    john, _, _ = await register_and_sign_in(platform, "John")
    async with platform.client(jane_token) as client:
        response = await client.get(f"/api/members/members/{john}")
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        patched = await client.patch(f"/api/members/members/{john}", json={"city": "Elsewhere"})
        assert patched.status_code == 403


async def test_requests_without_a_token_are_refused(platform: Platform) -> None:
    member_id, _, _ = await register_and_sign_in(platform)
    async with platform.client() as client:
        response = await client.get(f"/api/members/members/{member_id}")
        assert response.status_code == 401
        forged = await client.get(
            f"/api/members/members/{member_id}", headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
        )
        assert forged.status_code == 401


async def test_bad_input_is_a_4xx(platform: Platform) -> None:
    async with platform.client() as client:
        response = await client.post("/api/members/members", json={"email": "nope"})
        assert response.status_code == 422
        assert response.json()["message"]
        unknown = await client.get("/api/nosuchservice/x")
        assert unknown.status_code == 404


async def test_dues_paid_renews_membership(platform: Platform) -> None:
    member_id, _, token = await register_and_sign_in(platform)
    async with platform.client(token) as client:
        terms = []
        for _ in range(2):
            order = await client.post("/api/commerce/orders", json={"lines": [{"kind": "dues"}]})
            assert order.status_code == 201, order.text
            order_id = order.json()["order_id"]
            paid = await client.post(
                f"/api/commerce/orders/{order_id}/pay",
                json={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}},
            )
            assert paid.status_code == 200, paid.text
            deadline = time.monotonic() + 30
            while True:
                membership = (await client.get(f"/api/members/members/{member_id}/membership")).json()
                if membership["term_end"] is not None and membership["term_end"] not in [t["term_end"] for t in terms]:
                    terms.append(membership)
                    break
                assert time.monotonic() < deadline, f"membership not updated: {membership}"
                await asyncio.sleep(0.2)
        assert terms[0]["status"] == "active"
        assert terms[1]["term_start"] == terms[0]["term_end"]  # renewed: the new term follows the old one
        assert terms[1]["member_since"] == terms[0]["member_since"]
        own = (await client.get(f"/api/members/members/{member_id}")).json()
        assert own["status"] == "active"
