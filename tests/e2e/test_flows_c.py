"""Flows through the running system for companies, notifications, reports, media and search:
exam passed -> congratulation mail, member found by designation, company rollup and report figures
changed; image uploaded -> thumbnail -> searchable; notifications or search stopped -> the member's
request still succeeds at once, and the work is done when the service is back."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from PIL import Image

from scte.kit.auth import TokenIssuer

from .conftest import Platform, join_company

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
    """The staff systems (exam system, back office) sign in as staff; the test signs as them."""
    issuer = TokenIssuer.from_file(platform.data_dir / "keys" / "jwt-ed25519.pem")
    return issuer.issue("e2e-staff", ("member", "staff"))


async def member(platform: Platform, name: str) -> tuple[str, str, str]:
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    async with platform.client() as client:
        created = await client.post(
            "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": name}
        )
        assert created.status_code == 201, created.text
        signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
    member_id, token = created.json()["id"], signed.json()["access_token"]
    async with platform.client(token) as client:
        listed = await client.patch(
            f"/api/members/members/{member_id}", json={"listed_in_directory": True, "city": "Exton", "country": "US"}
        )
        assert listed.status_code == 200, listed.text
    return member_id, email, token


async def pass_exam(platform: Platform, member_id: str, token: str, program: str = "BPI") -> float:
    """Pay the exam fee and record a full-marks attempt; the seconds the attempt request took."""
    async with platform.client(token) as client:
        order = await client.post("/api/commerce/orders", json={"lines": [{"kind": "exam_fee", "reference": program}]})
        assert order.status_code == 201, order.text
        paid = await client.post(f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD})
        assert paid.status_code == 200, paid.text
    async with platform.client(staff_token(platform)) as staff:
        exams = (await staff.get("/api/learning/exams")).json()
        questions = next(e["questions"] for e in exams if e.get("exam_id", e.get("id")) == program)

        async def attempt() -> Any:
            started = time.monotonic()
            r = await staff.post(
                f"/api/learning/exams/{program}/attempts", json={"member_id": member_id, "correct": questions}
            )
            return (r, time.monotonic() - started) if r.status_code == 201 else None

        # the exam fee reaches learning through the broker: retry until it has
        _response, took = await eventually(attempt, what="exam attempt accepted (fee paid)")
    return float(took)


async def search(platform: Platform, token: str, q: str) -> list[dict[str, Any]]:
    async with platform.client(token) as client:
        r = await client.get("/api/search/search", params={"q": q})
        assert r.status_code == 200, r.text
        return list(r.json()["results"])


async def report(platform: Platform, name: str) -> str:
    async with platform.client(staff_token(platform)) as client:
        r = await client.get(f"/api/reports/reports/{name}.csv")
        assert r.status_code == 200, r.text
        return r.text


def _bpi_count(csv_text: str) -> int:
    return sum(int(line.split(",")[2]) for line in csv_text.splitlines()[1:] if line.split(",")[1] == "BPI")


async def test_exam_pass_reaches_mail_search_rollup_and_reports(platform: Platform) -> None:
    admin_id, _, admin_token = await member(platform, "Ada Admin")
    member_id, email, token = await member(platform, f"Bea {uuid.uuid4().hex[:6]}")
    company_id = f"e2e-{uuid.uuid4().hex[:8]}"
    async with platform.client(staff_token(platform)) as staff:
        r = await staff.post(
            "/api/companies/companies",
            json={"company_id": company_id, "name": "E2E Cable", "admin_member_id": admin_id},
        )
        assert r.status_code == 201, r.text
    await join_company(platform, company_id, admin_token, member_id, token)
    before = _bpi_count(await report(platform, "certifications_per_program_month"))

    await pass_exam(platform, member_id, token)

    mail = await platform.wait_for_mail(email, lambda m: "Congratulations" in m.subject, timeout=60)
    assert "BPI" in mail.subject

    async def found() -> bool:
        return any(hit["id"] == member_id for hit in await search(platform, token, "BPI"))

    await eventually(found, what="member found by designation")

    async def rollup() -> Any:
        async with platform.client(admin_token) as client:
            r = await client.get(f"/api/companies/companies/{company_id}/rollup")
            assert r.status_code == 200, r.text
            return r.json()["certified_headcount"].get("BPI") == 1

    await eventually(rollup, what="company rollup counts the new BPI")

    async def counted() -> bool:
        return _bpi_count(await report(platform, "certifications_per_program_month")) == before + 1

    await eventually(counted, what="report counts the award")


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_uploaded_image_is_processed_and_searchable(platform: Platform) -> None:
    _member_id, _, token = await member(platform, "Media Maker")
    title = f"Headend rack {uuid.uuid4().hex[:6]}"
    async with platform.client(token) as client:
        r = await client.post(
            "/api/media/media", files={"file": ("rack.jpg", _jpeg(), "image/jpeg")}, data={"title": title}
        )
        assert r.status_code == 201, r.text
        media_id = r.json()["media_id"]

        async def processed() -> Any:
            body = (await client.get(f"/api/media/media/{media_id}")).json()
            return body if body["status"] == "processed" else None

        body = await eventually(processed, what="media processed")
        assert {r["name"] for r in body["renditions"]} >= {"thumb"}
        thumb = await client.get(f"/api/media/media/{media_id}/renditions/thumb")
        assert thumb.status_code == 200
        assert Image.open(io.BytesIO(thumb.content)).size == (160, 160)

    async def searchable() -> bool:
        return any(hit["id"] == media_id for hit in await search(platform, token, title.split()[-1]))

    await eventually(searchable, what="media searchable")


# above `scte up`'s start (240 s, for the first test of a worker) and the sum of this test's waits (510 s)
@pytest.mark.timeout(800)
@pytest.mark.parametrize("stopped", ["notifications", "search"])
async def test_a_stopped_service_delays_work_but_not_the_member(platform: Platform, stopped: str) -> None:
    name = f"Res {uuid.uuid4().hex[:6]}"
    member_id, email, token = await member(platform, name)
    await platform.wait_for_mail(email, lambda m: "Welcome" in m.subject, timeout=60)

    async def listed() -> bool:
        return any(hit["id"] == member_id for hit in await search(platform, token, name.split()[-1]))

    async def found() -> bool:
        return any(hit["id"] == member_id for hit in await search(platform, token, "BPI"))

    await eventually(listed, what="directory entry indexed before search stops")
    platform.stop_service(stopped)
    try:
        # Answered (201) while the service is stopped: nothing in the request waits on it. (Not timed: on a
        # busy machine any request can take seconds; a call to the stopped service would fail, not be slow.)
        await pass_exam(platform, member_id, token)
        if stopped == "notifications":
            # the result went through the rest of the system (search shows it), yet no mail: nobody to send it
            await eventually(found, timeout=90, what="certification indexed while notifications is stopped")
            assert not [m for m in platform.mails(email) if "Congratulations" in m.subject]
        else:
            # notifications handled the same event meanwhile; search is not there to answer
            await platform.wait_for_mail(email, lambda m: "Congratulations" in m.subject, timeout=90)
            async with platform.client(token) as client:
                r = await client.get("/api/search/search", params={"q": "BPI"})
                assert r.status_code >= 500  # the gateway cannot reach it
    finally:
        platform.start_service(stopped)
    await platform.wait_for_mail(email, lambda m: "Congratulations" in m.subject, timeout=90)
    await eventually(found, timeout=90, what="member found once search is back")
