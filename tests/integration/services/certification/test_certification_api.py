"""Certification's REST API on its real runtime (SQLite and PostgreSQL): who may see and renew what,
and refusals with a message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from b_support import KINDS, Running, assert_error, running
from sqlalchemy import select

from scte.kit.app import ServiceContext
from scte.services.certification import db
from scte.services.certification.domain import CertificationStatus, Program, add_months, award, course_credit
from scte.services.certification.handlers import _save, credit_units
from scte.services.certification.service import build_runtime

START = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture(params=KINDS)
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    async with running(request.param, tmp_path, service="certification", build_runtime=build_runtime, at=START) as r:
        yield r


async def given_certification(ctx: ServiceContext, member: str, awarded_on: date, units: int) -> str:
    cert = award(f"cert-{member}", member, Program.BPI, awarded_on)
    async with ctx.sessionmaker() as session, session.begin():
        await _save(session, cert, CertificationStatus.ACTIVE, new=True)

        async def publish(event, *, topic):  # type: ignore[no-untyped-def]
            return await ctx.publisher.publish(session, event, topic=topic)

        if units:
            await credit_units(session, publish, course_credit(member, f"c-{member}", units, awarded_on))
    return cert.certification_id


def context(svc: Running) -> ServiceContext:
    assert svc.runtime.context is not None
    return svc.runtime.context


async def test_requests_without_a_valid_token_are_refused(svc: Running) -> None:
    assert_error(await svc.client.get("/members/m1/certifications"), 401)
    assert_error(await svc.client.get("/members/m1/units", headers={"Authorization": "Bearer nonsense"}), 401)
    assert_error(await svc.client.post("/certifications/x/renew"), 401)


async def test_a_member_sees_only_their_own_certifications(svc: Running) -> None:
    cert_id = await given_certification(context(svc), "m1", START.date(), 0)
    mine = await svc.client.get("/members/m1/certifications", headers=svc.as_member("m1"))
    assert mine.status_code == 200
    [view] = mine.json()
    assert view["certification_id"] == cert_id and view["status"] == "active" and view["designation"] == "BPI"
    assert view["units_required"] == 12 and view["renewable_now"] is False
    assert "renewal opens on" in view["renewal_refused_because"]

    assert_error(await svc.client.get("/members/m1/certifications", headers=svc.as_member("m2")), 403)
    assert_error(await svc.client.get("/members/m1/units", headers=svc.as_member("m2")), 403)
    assert_error(await svc.client.get(f"/certifications/{cert_id}", headers=svc.as_member("m2")), 403)
    assert_error(await svc.client.post(f"/certifications/{cert_id}/renew", headers=svc.as_member("m2")), 403)
    staff = await svc.client.get("/members/m1/certifications", headers=svc.staff())
    assert staff.status_code == 200 and len(staff.json()) == 1
    assert_error(await svc.client.get("/certifications", headers=svc.as_member("m1")), 403)
    listed = await svc.client.get("/certifications", params={"program": "BPI"}, headers=svc.staff())
    assert [c["certification_id"] for c in listed.json()] == [cert_id]


async def test_renewal_is_refused_with_the_reason_then_granted_in_the_window(svc: Running) -> None:
    awarded_on = add_months(START.date(), -32)  # expires in 4 months: the window is open
    cert_id = await given_certification(context(svc), "m1", awarded_on, 11)
    refused = assert_error(await svc.client.post(f"/certifications/{cert_id}/renew", headers=svc.as_member("m1")), 409)
    assert "1 more recertification units" in refused["message"]

    async with context(svc).sessionmaker() as session, session.begin():

        async def publish(event, *, topic):  # type: ignore[no-untyped-def]
            return await context(svc).publisher.publish(session, event, topic=topic)

        await credit_units(session, publish, course_credit("m1", "c-more", 1, START.date() - timedelta(days=1)))
    renewed = await svc.client.post(f"/certifications/{cert_id}/renew", headers=svc.as_member("m1"))
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    old_expiry = add_months(awarded_on, 36)
    assert body["cycle_start"] == old_expiry.isoformat()
    assert body["expires_on"] == add_months(old_expiry, 36).isoformat()
    assert body["units_earned"] == 0 and body["status"] == "active"
    units = (await svc.client.get("/members/m1/units", headers=svc.as_member("m1"))).json()
    assert units["total_units"] == 12 and len(units["credits"]) == 2
    async with context(svc).sessionmaker() as session:
        renewals = (await session.execute(select(db.renewals))).mappings().all()
    assert [(r["basis"], r["units_earned"]) for r in renewals] == [("units", 12)]


async def test_bad_input_gets_a_4xx_with_a_message(svc: Running) -> None:
    assert_error(await svc.client.get("/certifications/nope", headers=svc.staff()), 404)
    assert_error(await svc.client.post("/certifications/nope/renew", headers=svc.as_member("m1")), 404)
    assert_error(await svc.client.get("/certifications", params={"program": "NOPE"}, headers=svc.staff()), 422)
    assert_error(await svc.client.get("/certifications", params={"limit": 0}, headers=svc.staff()), 422)
    assert_error(await svc.client.get("/members/bad id!/units", headers=svc.staff()), 422)
    programs = await svc.client.get("/programs", headers=svc.as_member("m1"))
    assert [p["code"] for p in programs.json()][:3] == ["BPI", "BPT", "BPE"]
    assert (await svc.client.get("/health")).json()["status"] == "ok"
