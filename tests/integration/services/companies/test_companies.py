"""Companies on a real database and broker: employment links and roles through the API, rollups fed
by certification and commerce events, company.rollup_changed only on change, access by role."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from scte.contracts.certification import CertificationAwarded, CertificationExpired
from scte.contracts.commerce import OrderLine, OrderPaid, PoCharged
from scte.contracts.members import MemberRegistered, MemberStatusChanged

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def make_company(service: Any, company_id: str = "acme", admin: str = "m-admin") -> None:
    r = await service.client.post(
        "/companies",
        json={"company_id": company_id, "name": "Acme Cable", "admin_member_id": admin},
        headers=service.staff(),
    )
    assert r.status_code == 201, r.text


async def join(service: Any, member: str, company_id: str = "acme", admin: str = "m-admin") -> None:
    """The member joins with consent: the company's admin invites them, they accept."""
    r = await service.client.post(
        f"/companies/{company_id}/invitations", json={"member_id": member}, headers=service.auth(admin)
    )
    assert r.status_code == 201, r.text
    r = await service.client.post(
        f"/members/{member}/invitations/{r.json()['invitation_id']}/accept", headers=service.auth(member)
    )
    assert r.status_code == 200, r.text


def award(member: str, program: str = "BPI", cert: str | None = None, expires: date = date(2029, 3, 1)) -> Any:
    return CertificationAwarded(
        certification_id=cert or f"c-{member}-{program}",
        member_id=member,
        program=program,
        program_name="Broadband Premises Installer",
        awarded_on=date(2026, 3, 1),
        expires_on=expires,
    )


async def test_rollup_counts_certified_employees_and_publishes_on_change(service: Any) -> None:
    await make_company(service)
    await join(service, "m1")
    await service.publish(award("m1"), topic="certification")
    await service.publish(award("outsider"), topic="certification")

    async def headcount() -> Any:
        changes = await service.published("company.rollup_changed.v1")
        return changes and changes[-1].certified_headcount == {"BPI": 1}

    await service.eventually(headcount)
    r = await service.client.get("/companies/acme/rollup", headers=service.auth("m-admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["employee_count"] == 2 and body["certified_headcount"] == {"BPI": 1}
    assert body["expiring_count"] == 0

    # an event that changes no figure publishes nothing
    count = len(await service.published("company.rollup_changed.v1"))
    await service.publish(award("outsider", "BDS"), topic="certification")
    await service.eventually(lambda: _processed_at_least(service, 3))
    assert len(await service.published("company.rollup_changed.v1")) == count


async def _processed_at_least(service: Any, n: int) -> bool:
    return await service.processed() >= n


async def test_expiring_soon_and_expiry(service: Any) -> None:
    await make_company(service)
    await join(service, "m1")
    await service.publish(award("m1", expires=date(2026, 5, 1)), topic="certification")

    async def expiring() -> bool:
        r = await service.client.get("/companies/acme/rollup", headers=service.staff())
        return bool(r.json()["expiring_count"] == 1)

    await service.eventually(expiring)
    await service.publish(
        CertificationExpired(
            certification_id="c-m1-BPI",
            member_id="m1",
            program="BPI",
            expired_on=date(2026, 5, 1),
            lapses_on=date(2027, 5, 1),
        ),
        topic="certification",
    )

    async def gone() -> bool:
        r = await service.client.get("/companies/acme/rollup", headers=service.staff())
        return bool(r.json()["certified_headcount"] == {} and r.json()["expiring_count"] == 0)

    await service.eventually(gone)


async def test_training_spend_counts_an_order_once(service: Any) -> None:
    await make_company(service)
    paid = OrderPaid(
        order_id="o1",
        member_id=None,
        company_id="acme",
        lines=(
            OrderLine(kind="course_seat", reference="c1", unit_price_cents=20000, beneficiary_id="m1"),
            OrderLine(kind="dues", reference="m1", unit_price_cents=9900),
        ),
        total_cents=29900,
        currency="USD",
        payment_method="purchase_order",
        paid_at=NOW,
    )
    charge = PoCharged(
        charge_id="ch1",
        po_id="po1",
        po_number="PO-1",
        company_id="acme",
        order_id="o1",
        amount_cents=29900,
        currency="USD",
        remaining_cents=100000,
        charged_at=NOW,
    )
    envelope = await service.publish(paid, topic="commerce")
    await service.publish(charge, topic="commerce")
    await service.eventually(lambda: _processed_at_least(service, 2))
    await service.redeliver(paid, envelope)
    await service.eventually(lambda: _processed_at_least(service, 3))
    r = await service.client.get("/companies/acme/rollup", headers=service.auth("m-admin"))
    assert r.json()["training_spend_cents"] == 20000  # training only (no dues), once


async def test_employees_list_shows_read_model(service: Any) -> None:
    await make_company(service)
    await service.publish(
        MemberRegistered(member_id="m1", email="m1@example.com", display_name="Ada", registered_at=NOW), topic="members"
    )
    await service.publish(
        MemberStatusChanged(
            member_id="m1", previous_status="prospect", status="active", designations=("BPI",), changed_at=NOW
        ),
        topic="members",
    )
    await join(service, "m1")

    async def listed() -> bool:
        r = await service.client.get("/companies/acme/employees", headers=service.auth("m-admin"))
        people = {p["member_id"]: p for p in r.json()}
        return "m1" in people and people["m1"]["designations"] == ["BPI"] and people["m1"]["display_name"] == "Ada"

    await service.eventually(listed)
    assert {e.member_id for e in await service.published("company.employment_changed.v1")} == {"m-admin", "m1"}


async def test_roles_and_access(service: Any) -> None:
    await make_company(service)
    await join(service, "m1")
    member = service.auth("m1")
    assert (await service.client.get("/companies/acme/rollup", headers=member)).status_code == 403
    assert (await service.client.get("/companies/acme/employees", headers=member)).status_code == 403
    r = await service.client.put("/companies/acme/roles/m1", json={"roles": ["admin"]}, headers=member)
    assert r.status_code == 403
    r = await service.client.put(
        "/companies/acme/roles/m1", json={"roles": ["report_viewer"]}, headers=service.auth("m-admin")
    )
    assert r.status_code == 200, r.text
    assert (await service.client.get("/companies/acme/rollup", headers=member)).status_code == 200
    # the last admin cannot be removed
    r = await service.client.put("/companies/acme/roles/m-admin", json={"roles": []}, headers=service.auth("m-admin"))
    assert r.status_code == 409 and "admin" in r.json()["message"]
    r = await service.client.delete("/companies/acme/employees/m-admin", headers=service.auth("m-admin"))
    assert r.status_code == 409
    # a token naming the member company admin of this company is enough too
    r = await service.client.get(
        "/companies/acme/rollup", headers=service.auth("x", "member", "company_admin", company_id="acme")
    )
    assert r.status_code == 200
    r = await service.client.get(
        "/companies/acme/rollup", headers=service.auth("x", "member", "company_admin", company_id="other")
    )
    assert r.status_code == 403
    roles = await service.published("company.roles_changed.v1")
    assert [(e.member_id, e.roles) for e in roles] == [("m-admin", ("admin",)), ("m1", ("report_viewer",))]


async def test_member_leaves_company(service: Any) -> None:
    await make_company(service)
    await join(service, "m1")
    r = await service.client.delete("/companies/acme/employees/m1", headers=service.auth("m1"))
    assert r.status_code == 200, r.text
    r = await service.client.delete("/companies/acme/employees/m1", headers=service.auth("m1"))
    assert r.status_code == 404
    r = await service.client.delete("/companies/acme/employees/m-admin", headers=service.auth("m1"))
    assert r.status_code == 403


async def test_bad_input_and_no_token(service: Any) -> None:
    assert (await service.client.get("/companies")).status_code == 401
    r = await service.client.post("/companies", json={"name": ""}, headers=service.staff())
    assert r.status_code == 422 and r.json()["message"]
    r = await service.client.post("/companies", json={"name": "X"}, headers=service.auth("m1"))
    assert r.status_code == 403
    await make_company(service)
    r = await service.client.post("/companies", json={"company_id": "acme", "name": "X"}, headers=service.staff())
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    r = await service.client.get("/companies/nope/rollup", headers=service.staff())
    assert r.status_code == 404 and r.json()["message"]
    r = await service.client.put("/companies/acme/roles/m9", json={"roles": ["boss"]}, headers=service.staff())
    assert r.status_code == 422
    r = await service.client.put("/companies/acme/roles/m9", json={"roles": ["admin"]}, headers=service.staff())
    assert r.status_code == 400 and "link" in r.json()["message"]
    r = await service.client.post(
        "/companies/acme/employees", json={"member_id": "m1", "started_on": "2099-01-01"}, headers=service.staff()
    )
    assert r.status_code == 400
    r = await service.client.post("/companies/acme/employees", json={"member_id": "m-admin"}, headers=service.staff())
    assert r.status_code == 409
