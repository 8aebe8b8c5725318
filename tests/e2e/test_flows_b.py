"""Flows through the running system, asserted on what the member (or the company's admin) sees:

- course completed -> units credited -> the renewal-possible mail once the program's requirement is
  reached (12 units; 21 for DVEP), once per cycle;
- purchase-order charge -> on the company's monthly invoice, issued when the platform clock passes the
  1st of the next month -> invoice mail to the company's admin;
- expiry reminders on schedule: the platform clock moved to the renewal window's opening -> the
  reminder mail (to the member and their company's admin); moved past the expiry -> the expiry mail.

Dues paid -> membership renewed is walked in test_members_e2e.py.

The tests that move the platform clock put it back when they end (every later test runs on the wall
clock), and wait for the mails they expect before they do: a notice queued while the clock is ahead
is due at that (future) time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import pytest

from scte.kit.auth import TokenIssuer

from .conftest import Platform, join_company

PASSWORD = "a long enough passphrase 42"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
MAIL_TIMEOUT = 60.0


# -- helpers -------------------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 45.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


def staff_token(platform: Platform) -> str:
    """The staff systems (course system, exam system, back office) sign in as staff."""
    issuer = TokenIssuer.from_file(platform.data_dir / "keys" / "jwt-ed25519.pem")
    return issuer.issue("e2e-staff", ("member", "staff"))


async def sign_in(platform: Platform, email: str) -> dict[str, Any]:
    async with platform.client() as client:
        signed = await client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        return dict(signed.json())


async def register(platform: Platform, name: str) -> tuple[str, str, str]:
    """A new member, signed in: (member id, email, token)."""
    email = f"{uuid.uuid4().hex[:10]}@e2e.example"
    async with platform.client() as client:
        created = await client.post(
            "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": name}
        )
        assert created.status_code == 201, created.text
    return created.json()["id"], email, (await sign_in(platform, email))["access_token"]


async def pass_exam(platform: Platform, member_id: str, token: str, program: str) -> None:
    """The member pays the exam fee; the exam system records a full-marks attempt."""
    async with platform.client(token) as client:
        order = await client.post("/api/commerce/orders", json={"lines": [{"kind": "exam_fee", "reference": program}]})
        assert order.status_code == 201, order.text
        paid = await client.post(f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD})
        assert paid.status_code == 200, paid.text
    async with platform.client(staff_token(platform)) as staff:
        exams = (await staff.get("/api/learning/exams")).json()
        questions = next(e["questions"] for e in exams if e["exam_id"] == program)

        async def attempt() -> bool:
            r = await staff.post(
                f"/api/learning/exams/{program}/attempts", json={"member_id": member_id, "correct": questions}
            )
            assert r.status_code in (201, 409), r.text  # 409: the fee has not reached learning yet
            return bool(r.status_code == 201)

        await eventually(attempt, what=f"{program} exam attempt accepted (fee paid)")


async def certification(platform: Platform, member_id: str, token: str, program: str) -> dict[str, Any]:
    """The member's certification in `program`, once the certification service has awarded it."""

    async def awarded() -> dict[str, Any] | None:
        async with platform.client(token) as client:
            r = await client.get(f"/api/certification/members/{member_id}/certifications")
            assert r.status_code == 200, r.text
            return next((c for c in r.json() if c["program"] == program), None)

    return dict(await eventually(awarded, what=f"{program} certification awarded"))


async def company_with_admin(platform: Platform, admin_id: str, admin_email: str) -> tuple[str, str]:
    """A new company administered by the member; (company id, the admin's token carrying the role)."""
    company_id = f"e2e-{uuid.uuid4().hex[:8]}"
    async with platform.client(staff_token(platform)) as staff:
        r = await staff.post(
            "/api/companies/companies",
            json={"company_id": company_id, "name": f"E2E Cable {company_id}", "admin_member_id": admin_id},
        )
        assert r.status_code == 201, r.text

    async def admin_token() -> str | None:
        signed = await sign_in(platform, admin_email)
        ok = "company_admin" in signed["roles"] and signed["company_id"] == company_id
        return str(signed["access_token"]) if ok else None

    # the role reaches the members service (and so the next token) through the broker
    return company_id, str(await eventually(admin_token, what="the admin's token carries company_admin"))


def mails_with(platform: Platform, email: str, start: str) -> list[str]:
    """The subjects of the mails to `email` that begin with `start`."""
    return [m.subject for m in platform.mails(email) if m.subject.startswith(start)]


@pytest.fixture
def clock(platform: Platform) -> Iterator[Callable[[datetime], None]]:
    """`move_to(when)`: every service's clock reads `when` (a little after) from now on; back to the
    wall clock after the test."""

    def move_to(when: datetime) -> None:
        platform.set_clock_offset((when - datetime.now(UTC)).total_seconds())

    try:
        yield move_to
    finally:
        platform.set_clock_offset(0)


def start_of(day: date) -> datetime:
    return datetime.combine(day, clock_time(0), UTC)


# -- course completed -> units credited -> renewal-possible mail -------------------------------------------


async def complete(platform: Platform, member_id: str, course_id: str) -> int:
    """The course system enrolls the member and records the completion; the course's units."""
    async with platform.client(staff_token(platform)) as staff:
        enrolled = await staff.post("/api/learning/enrollments", json={"member_id": member_id, "course_id": course_id})
        assert enrolled.status_code == 201, enrolled.text
        done = await staff.post("/api/learning/completions", json={"member_id": member_id, "course_id": course_id})
        assert done.status_code == 201, done.text
        return int(done.json()["units"])


async def units(platform: Platform, member_id: str, token: str, total: int) -> dict[str, Any]:
    """The member's unit ledger once it holds `total` units."""

    async def credited() -> dict[str, Any] | None:
        async with platform.client(token) as client:
            r = await client.get(f"/api/certification/members/{member_id}/units")
            assert r.status_code == 200, r.text
            body = dict(r.json())
            return body if body["total_units"] == total else None

    return dict(await eventually(credited, what=f"{total} units credited"))


async def test_completed_courses_credit_units_and_the_requirement_met_is_mailed(platform: Platform) -> None:
    member_id, email, token = await register(platform, f"Una Units {uuid.uuid4().hex[:6]}")
    for program in ("BPI", "DVEP"):  # 12 units per cycle; 21 for DVEP
        await pass_exam(platform, member_id, token, program)
        await certification(platform, member_id, token, program)
    # the awards' own notices are out: nothing about renewing has been said yet
    await platform.wait_for_mail(email, lambda m: "DVEP" in m.subject and "Congratulations" in m.subject)

    earned = 0
    for course_id in ("bpe-design", "dep-docsis31"):  # 4 + 4
        earned += await complete(platform, member_id, course_id)
    ledger = await units(platform, member_id, token, 8)
    assert {c["source"] for c in ledger["credits"]} == {"course_completion"}
    assert not mails_with(platform, email, "You can renew")

    earned += await complete(platform, member_id, "ipep-ip-networks")  # 12: BPI's requirement
    assert earned == 12
    ledger = await units(platform, member_id, token, 12)
    cycles = {c["program"]: c for c in ledger["cycles"]}
    assert (cycles["BPI"]["units_earned"], cycles["BPI"]["units_required"]) == (12, 12)
    assert (cycles["DVEP"]["units_earned"], cycles["DVEP"]["units_required"]) == (12, 21)
    mail = await platform.wait_for_mail(email, lambda m: m.subject == "You can renew your BPI certification")
    assert "12 of the 12" in mail.body

    for course_id in ("bpi-fundamentals", "bpt-troubleshooting", "bts-transport"):  # 3 + 3 + 3 = 21
        earned += await complete(platform, member_id, course_id)
    assert earned == 21
    await units(platform, member_id, token, 21)
    mail = await platform.wait_for_mail(email, lambda m: m.subject == "You can renew your DVEP certification")
    assert "21 of the 21" in mail.body
    # told once per cycle: the BPI notice is not repeated by the later credits
    assert mails_with(platform, email, "You can renew your BPI") == ["You can renew your BPI certification"]
    async with platform.client(token) as client:
        certs = {
            c["program"]: c for c in (await client.get(f"/api/certification/members/{member_id}/certifications")).json()
        }
    assert certs["BPI"]["units_earned"] == 21 and certs["DVEP"]["units_earned"] == 21


# -- purchase-order charge -> monthly invoice -> mail to the company's admin -------------------------------


async def test_purchase_order_charges_are_invoiced_at_month_end_and_mailed_to_the_admin(
    platform: Platform, clock: Callable[[datetime], None]
) -> None:
    admin_id, admin_email, _ = await register(platform, f"Ian Invoice {uuid.uuid4().hex[:6]}")
    employee_id, _, employee_token = await register(platform, f"Eve Employee {uuid.uuid4().hex[:6]}")
    company_id, admin_token = await company_with_admin(platform, admin_id, admin_email)
    today = datetime.now(UTC).date()
    await join_company(platform, company_id, admin_token, employee_id, employee_token)

    async with platform.client(admin_token) as admin:
        po = await admin.post(
            f"/api/commerce/companies/{company_id}/purchase-orders",
            json={
                "number": "PO-E2E-1",
                "limit_cents": 1_000_000,
                "valid_from": (today - timedelta(days=1)).isoformat(),
                "valid_until": (today + timedelta(days=90)).isoformat(),
            },
        )
        assert po.status_code == 201, po.text
        po_id = po.json()["po_id"]
        order = await admin.post(
            "/api/commerce/orders",
            json={
                "company_id": company_id,
                "lines": [{"kind": "course_seat", "reference": "fiber-splicing", "beneficiary_id": employee_id}],
            },
        )
        assert order.status_code == 201, order.text
        total = order.json()["total_cents"]
        charged = await admin.post(
            f"/api/commerce/purchase-orders/{po_id}/charges", json={"order_id": order.json()["order_id"]}
        )
        assert charged.status_code == 201, charged.text
        assert charged.json()["amount_cents"] == total
        assert charged.json()["remaining_cents"] == 1_000_000 - total
        charged_on = datetime.fromisoformat(charged.json()["charged_at"]).astimezone(UTC).date()
        month = f"{charged_on.year:04d}-{charged_on.month:02d}"
        assert (await admin.get(f"/api/commerce/orders/{order.json()['order_id']}")).json()["status"] == "paid"
        none_yet = await admin.get(f"/api/commerce/companies/{company_id}/invoices")
        assert none_yet.status_code == 200 and none_yet.json() == []  # not before the month has ended

        # the month ends: the invoicing run scheduled by the first charge issues the invoice
        first_of_next = date(charged_on.year + charged_on.month // 12, charged_on.month % 12 + 1, 1)
        clock(start_of(first_of_next) + timedelta(minutes=5))
        invoice_id = f"INV-{company_id}-{month}"
        mail = await platform.wait_for_mail(
            admin_email, lambda m: m.subject == f"Invoice {invoice_id}", timeout=MAIL_TIMEOUT
        )
        assert "1 purchase-order charges" in mail.body
        assert f"{total // 100:,}.{total % 100:02d} USD" in mail.body

        invoices = await admin.get(f"/api/commerce/companies/{company_id}/invoices")
        assert invoices.status_code == 200, invoices.text
        [invoice] = invoices.json()
        assert invoice["invoice_id"] == invoice_id and invoice["month"] == month
        assert (invoice["total_cents"], invoice["charge_count"]) == (total, 1)
        assert invoice["issued_on"] == first_of_next.isoformat()
        assert invoice["due_on"] == (first_of_next + timedelta(days=30)).isoformat()
        assert [c["order_id"] for c in invoice["charges"]] == [order.json()["order_id"]]

    # issuing the month again by hand (staff) yields the same invoice, and mails nobody again
    async with platform.client(staff_token(platform)) as staff:
        again = await staff.post("/api/commerce/invoices/issue", params={"month": month})
        assert again.status_code == 200, again.text
        assert [i["invoice_id"] for i in again.json() if i["company_id"] == company_id] == [invoice_id]
    await asyncio.sleep(1.0)
    assert mails_with(platform, admin_email, "Invoice INV-") == [f"Invoice {invoice_id}"]


# -- expiry reminders on schedule -----------------------------------------------------------------------


async def test_renewal_window_and_expiry_mails_follow_the_clock(
    platform: Platform, clock: Callable[[datetime], None]
) -> None:
    admin_id, admin_email, _ = await register(platform, f"Ada Admin {uuid.uuid4().hex[:6]}")
    name = f"Rex Reminder {uuid.uuid4().hex[:6]}"
    member_id, email, token = await register(platform, name)
    company_id, admin_token = await company_with_admin(platform, admin_id, admin_email)
    await join_company(platform, company_id, admin_token, member_id, token)
    await pass_exam(platform, member_id, token, "BPI")
    cert = await certification(platform, member_id, token, "BPI")
    expires_on = date.fromisoformat(cert["expires_on"])
    opens_on = date.fromisoformat(cert["renewal_opens_on"])
    assert opens_on.month == (expires_on.month - 6 - 1) % 12 + 1  # six months before expiry
    await platform.wait_for_mail(email, lambda m: "Congratulations" in m.subject)
    assert not mails_with(platform, email, "Time to renew")

    # the day the renewal window opens: the member is reminded, their company's admin told
    clock(start_of(opens_on) + timedelta(minutes=5))
    reminder = await platform.wait_for_mail(
        email, lambda m: m.subject == "Time to renew your BPI certification", timeout=MAIL_TIMEOUT
    )
    assert f"expires on {expires_on.isoformat()}" in reminder.body
    await platform.wait_for_mail(
        admin_email, lambda m: m.subject == f"{name}'s BPI certification is due for renewal", timeout=MAIL_TIMEOUT
    )
    assert not mails_with(platform, email, "Your BPI certification has expired")
    # the member signs in on that day (a token issued on the moved clock is accepted) and sees it due
    async with platform.client((await sign_in(platform, email))["access_token"]) as client:
        r = await client.get(f"/api/certification/certifications/{cert['certification_id']}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "renewal_due" and r.json()["held"] is True

    # the expiry day: the certification has expired
    clock(start_of(expires_on) + timedelta(minutes=5))
    expired = await platform.wait_for_mail(
        email, lambda m: m.subject == "Your BPI certification has expired", timeout=MAIL_TIMEOUT
    )
    assert f"expired on {expires_on.isoformat()}" in expired.body
    assert mails_with(platform, email, "Time to renew") == ["Time to renew your BPI certification"]  # once
