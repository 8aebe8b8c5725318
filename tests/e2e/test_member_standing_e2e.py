"""Exam passed -> certification awarded -> the member's record changed, seen through the gateway.

The members service keeps the member's standing and designations (its read model of certification
events): after an exam is passed the member's own record carries the program's designation, and the
certification service lists the award. The standing (`status`) is the membership's (docs/domain.md:
prospect, active, grace, lapsed, from dues paid); a certification gives a designation, not
membership. So: a non-member who passes stays a prospect with a designation, and a candidate who
pays the year's dues with the exam fee goes from prospect without designations to active with one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from scte.kit.auth import TokenIssuer

from .conftest import Platform

PASSWORD = "a long enough passphrase 42"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 45.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


def staff_token(platform: Platform) -> str:
    issuer = TokenIssuer.from_file(platform.data_dir / "keys" / "jwt-ed25519.pem")
    return issuer.issue("e2e-staff", ("member", "staff"))


async def register(platform: Platform) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    async with platform.client() as client:
        created = await client.post(
            "/api/members/members",
            json={"email": email, "password": PASSWORD, "display_name": f"Cert {uuid.uuid4().hex[:6]}"},
        )
        assert created.status_code == 201, created.text
        signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
    return str(created.json()["id"]), str(signed.json()["access_token"])


async def own_record(platform: Platform, member_id: str, token: str) -> dict[str, Any]:
    async with platform.client(token) as client:
        r = await client.get(f"/api/members/members/{member_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def me(platform: Platform, token: str) -> dict[str, Any]:
    async with platform.client(token) as client:
        r = await client.get("/api/members/me")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def buy_and_pass(platform: Platform, member_id: str, token: str, lines: list[dict[str, Any]]) -> None:
    """The member buys `lines` (with the BPI exam fee) by card; the exam system records full marks."""
    async with platform.client(token) as client:
        order = await client.post("/api/commerce/orders", json={"lines": lines})
        assert order.status_code == 201, order.text
        paid = await client.post(f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD})
        assert paid.status_code == 200, paid.text
    async with platform.client(staff_token(platform)) as staff:
        exams = (await staff.get("/api/learning/exams")).json()
        questions = next(e["questions"] for e in exams if e.get("exam_id", e.get("id")) == "BPI")

        async def attempt() -> bool:
            r = await staff.post(
                "/api/learning/exams/BPI/attempts", json={"member_id": member_id, "correct": questions}
            )
            return bool(r.status_code == 201)

        # the paid exam fee reaches learning through the broker: retry until it has
        await eventually(attempt, what="exam attempt accepted (fee paid)")


async def certifications(platform: Platform, member_id: str, token: str) -> list[dict[str, Any]]:
    async with platform.client(token) as client:
        r = await client.get(f"/api/certification/members/{member_id}/certifications")
        assert r.status_code == 200, r.text
        return list(r.json())


def _assert_bpi_award(certs: list[dict[str, Any]], member_id: str) -> None:
    assert len(certs) == 1, certs
    (cert,) = certs
    assert cert["member_id"] == member_id
    assert cert["program"] == "BPI"
    assert cert["held"] is True
    assert cert["designation"] == "BPI"
    assert cert["status"] == "active"
    assert cert["expires_on"] > cert["originally_awarded_on"]


async def test_passing_an_exam_gives_a_prospect_the_designation(platform: Platform) -> None:
    member_id, token = await register(platform)
    before = await own_record(platform, member_id, token)
    assert (before["status"], before["designations"]) == ("prospect", [])
    assert await certifications(platform, member_id, token) == []

    await buy_and_pass(platform, member_id, token, [{"kind": "exam_fee", "reference": "BPI"}])

    async def designated() -> dict[str, Any] | None:
        record = await own_record(platform, member_id, token)
        return record if record["designations"] == ["BPI"] else None

    after = await eventually(designated, what="the member's record shows the BPI designation")
    assert await me(platform, token) == after  # the same record under /me, changed for good
    assert after["status"] == "prospect"  # no dues paid: a certification is not a membership
    assert after["updated_at"] >= before["updated_at"]
    _assert_bpi_award(await certifications(platform, member_id, token), member_id)


async def test_dues_and_a_passed_exam_change_status_and_designations(platform: Platform) -> None:
    member_id, token = await register(platform)
    before = await own_record(platform, member_id, token)
    assert (before["status"], before["designations"]) == ("prospect", [])

    await buy_and_pass(platform, member_id, token, [{"kind": "dues"}, {"kind": "exam_fee", "reference": "BPI"}])

    async def changed() -> dict[str, Any] | None:
        record = await own_record(platform, member_id, token)
        return record if (record["status"], record["designations"]) == ("active", ["BPI"]) else None

    after = await eventually(changed, what="the member's record is active with the BPI designation")
    assert await me(platform, token) == after
    assert (after["status"], after["designations"]) != (before["status"], before["designations"])
    async with platform.client(token) as client:
        membership = (await client.get(f"/api/members/members/{member_id}/membership")).json()
    assert membership["status"] == "active"
    _assert_bpi_award(await certifications(platform, member_id, token), member_id)

    # another member sees none of it
    _other_id, other_token = await register(platform)
    async with platform.client(other_token) as client:
        assert (await client.get(f"/api/members/members/{member_id}")).status_code == 403
        assert (await client.get(f"/api/certification/members/{member_id}/certifications")).status_code == 403
