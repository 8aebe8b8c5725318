"""Company membership needs the member's consent: a company's admin invites, the member accepts or
refuses, and until an acceptance the company sees nothing of them. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from scte.contracts.members import MemberRegistered

from .test_companies import NOW, award, make_company


async def registered(service: Any, member: str, email: str) -> None:
    await service.publish(
        MemberRegistered(member_id=member, email=email, display_name=member.title(), registered_at=NOW),
        topic="members",
    )


async def employees(service: Any, company: str = "acme", who: str = "m-admin") -> dict[str, Any]:
    r = await service.client.get(f"/companies/{company}/employees", headers=service.auth(who))
    assert r.status_code == 200, r.text
    return {e["member_id"]: e for e in r.json()}


async def invite(service: Any, body: dict[str, str], admin: str = "m-admin") -> Any:
    return await service.client.post("/companies/acme/invitations", json=body, headers=service.auth(admin))


async def test_an_uninvited_company_sees_nothing_of_a_member(service: Any) -> None:
    """Reproduction: a company admin linked any member id with POST /companies/{c}/employees and then
    read their e-mail and certifications. Now linking is staff's, and only an accepted invitation
    makes the member visible."""
    await make_company(service)
    await registered(service, "victim", "victim@example.com")
    await service.publish(award("victim"), topic="certification")
    await service.eventually(lambda: _processed(service, 2))

    linked = await service.client.post(
        "/companies/acme/employees", json={"member_id": "victim"}, headers=service.auth("m-admin")
    )
    assert linked.status_code == 403 and linked.json()["error"] == "forbidden"
    admin_token = service.auth("m-admin", "member", "company_admin", company_id="acme")
    linked = await service.client.post("/companies/acme/employees", json={"member_id": "victim"}, headers=admin_token)
    assert linked.status_code == 403
    # nor can a member link themselves to a company
    self_linked = await service.client.post(
        "/companies/acme/employees", json={"member_id": "victim"}, headers=service.auth("victim")
    )
    assert self_linked.status_code == 403
    assert "victim" not in await employees(service)

    # invited, not yet answered: still nothing (no e-mail, no certification, not counted)
    sent = await invite(service, {"member_id": "victim"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "pending" and "victim@example.com" not in sent.text
    assert "victim" not in await employees(service)
    rollup = (await service.client.get("/companies/acme/rollup", headers=service.auth("m-admin"))).json()
    assert rollup["employee_count"] == 1 and rollup["certified_headcount"] == {}
    [mail] = await service.published("company.invitation_sent.v1")
    assert (mail.member_id, mail.company_id, mail.company_name) == ("victim", "acme", "Acme Cable")

    # the member sees it and accepts: now the company sees them
    mine = await service.client.get("/members/victim/invitations", headers=service.auth("victim"))
    assert [(i["company_id"], i["company_name"]) for i in mine.json()] == [("acme", "Acme Cable")]
    invitation_id = sent.json()["invitation_id"]
    accepted = await service.client.post(
        f"/members/victim/invitations/{invitation_id}/accept", headers=service.auth("victim")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["employed"] is True and accepted.json()["status"] == "accepted"
    seen = (await employees(service))["victim"]
    assert seen["email"] == "victim@example.com" and seen["certifications"][0]["program"] == "BPI"
    assert (await service.client.get("/members/victim/invitations", headers=service.auth("victim"))).json() == []
    listed = await service.client.get("/companies/acme/invitations", headers=service.auth("m-admin"))
    assert [i["status"] for i in listed.json()] == ["accepted"]


async def _processed(service: Any, n: int) -> bool:
    return await service.processed() >= n


async def test_only_the_invited_member_answers_and_only_once(service: Any) -> None:
    await make_company(service)
    sent = (await invite(service, {"member_id": "m1"})).json()
    path = f"/members/m1/invitations/{sent['invitation_id']}"
    # another member, the company's admin, staff: none may answer for m1
    assert (await service.client.post(f"{path}/accept", headers=service.auth("m2"))).status_code == 403
    assert (await service.client.post(f"{path}/accept", headers=service.auth("m-admin"))).status_code == 403
    assert (await service.client.post(f"{path}/accept", headers=service.staff())).status_code == 403
    other = f"/members/m2/invitations/{sent['invitation_id']}/accept"
    assert (await service.client.post(other, headers=service.auth("m2"))).status_code == 404
    assert (await service.client.get("/members/m1/invitations", headers=service.auth("m2"))).status_code == 403
    assert (await service.client.post(f"{path}/accept")).status_code == 401

    refused = await service.client.post(f"{path}/refuse", headers=service.auth("m1"))
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    again = await service.client.post(f"{path}/accept", headers=service.auth("m1"))
    assert again.status_code == 409 and "refused" in again.json()["message"]
    assert "m1" not in await employees(service)
    assert [e.member_id for e in await service.published("company.employment_changed.v1")] == ["m-admin"]


async def test_who_may_invite_and_withdraw(service: Any) -> None:
    await make_company(service)
    await make_company(service, "globex", admin="g-admin")
    assert (await invite(service, {"member_id": "m1"}, admin="m1")).status_code == 403
    assert (await invite(service, {"member_id": "m1"}, admin="g-admin")).status_code == 403
    assert (await service.client.get("/companies/acme/invitations", headers=service.auth("m1"))).status_code == 403
    sent = (await invite(service, {"member_id": "m1"})).json()
    duplicate = await invite(service, {"member_id": "m1"})
    assert duplicate.status_code == 409
    path = f"/companies/acme/invitations/{sent['invitation_id']}"
    assert (await service.client.delete(path, headers=service.auth("g-admin"))).status_code == 403
    wrong_company = f"/companies/globex/invitations/{sent['invitation_id']}"
    assert (await service.client.delete(wrong_company, headers=service.auth("g-admin"))).status_code == 404
    withdrawn = await service.client.delete(path, headers=service.auth("m-admin"))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    accept = f"/members/m1/invitations/{sent['invitation_id']}/accept"
    assert (await service.client.post(accept, headers=service.auth("m1"))).status_code == 409
    assert (await service.client.get("/members/m1/invitations", headers=service.auth("m1"))).json() == []


async def test_an_invitation_by_address_reveals_nobody(service: Any) -> None:
    await make_company(service)
    await registered(service, "m7", "Seven@Example.com")
    await service.eventually(lambda: _processed(service, 1))
    known = await invite(service, {"email": "SEVEN@example.com"})
    unknown = await invite(service, {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 201
    assert known.json().keys() == unknown.json().keys()
    assert known.json()["member_id"] is None and unknown.json()["member_id"] is None
    assert known.json()["email"] == "seven@example.com"
    mails = await service.published("company.invitation_sent.v1")
    assert [m.member_id for m in mails] == ["m7", None]  # mail goes to a known member only

    [mine] = (await service.client.get("/members/m7/invitations", headers=service.auth("m7"))).json()
    accepted = await service.client.post(
        f"/members/m7/invitations/{mine['invitation_id']}/accept", headers=service.auth("m7")
    )
    assert accepted.status_code == 200, accepted.text
    assert (await employees(service))["m7"]["email"] == "Seven@Example.com"


async def test_an_invitation_expires(service: Any) -> None:
    await make_company(service)
    sent = (await invite(service, {"member_id": "m1"})).json()
    service.clock.advance(timedelta(days=15).total_seconds())
    assert (await service.client.get("/members/m1/invitations", headers=service.auth("m1"))).json() == []
    late = await service.client.post(
        f"/members/m1/invitations/{sent['invitation_id']}/accept", headers=service.auth("m1")
    )
    assert late.status_code == 409 and "expired" in late.json()["message"]
    listed = (await service.client.get("/companies/acme/invitations", headers=service.auth("m-admin"))).json()
    assert [i["status"] for i in listed] == ["expired"]
    assert (await invite(service, {"member_id": "m1"})).status_code == 201  # a new one may be sent


@pytest.mark.parametrize("how", ["invitation", "staff"])
async def test_rejoining_the_same_day_after_leaving(service: Any, how: str) -> None:
    """Reproduction: joining the same company again on the day one left it hit the employments key
    (company, member, started_on): 500. The empty period is reopened instead."""
    await make_company(service)

    async def link() -> int:
        if how == "staff":
            r = await service.client.post(
                "/companies/acme/employees", json={"member_id": "m1"}, headers=service.staff()
            )
            return int(r.status_code)
        sent = (await invite(service, {"member_id": "m1"})).json()
        r = await service.client.post(
            f"/members/m1/invitations/{sent['invitation_id']}/accept", headers=service.auth("m1")
        )
        return int(r.status_code)

    for _ in range(2):
        assert await link() in (200, 201)
        assert "m1" in await employees(service)
        left = await service.client.delete("/companies/acme/employees/m1", headers=service.auth("m1"))
        assert left.status_code == 200, left.text
        assert "m1" not in await employees(service)
    assert await link() in (200, 201)
    assert "m1" in await employees(service)
    rollup = (await service.client.get("/companies/acme/rollup", headers=service.auth("m-admin"))).json()
    assert rollup["employee_count"] == 2


async def test_a_back_dated_link_may_not_overlap_an_earlier_employment(service: Any) -> None:
    await make_company(service)
    staff = service.staff()
    body = {"member_id": "m1", "started_on": "2025-01-01"}
    assert (await service.client.post("/companies/acme/employees", json=body, headers=staff)).status_code == 201
    service.clock.advance(timedelta(days=1).total_seconds())
    assert (await service.client.delete("/companies/acme/employees/m1", headers=staff)).status_code == 200
    overlapping = await service.client.post(
        "/companies/acme/employees", json={"member_id": "m1", "started_on": "2025-06-01"}, headers=staff
    )
    assert overlapping.status_code == 409 and "overlaps" in overlapping.json()["message"]
    same_start = await service.client.post("/companies/acme/employees", json=body, headers=staff)
    assert same_start.status_code == 409
