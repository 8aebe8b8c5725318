"""Reports on a real database and broker: counters fed by events (each counted once), CSV export,
report runs announced by report.ready, staff only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from scte.contracts.certification import CertificationAwarded
from scte.contracts.commerce import OrderLine, OrderPaid
from scte.contracts.learning import CourseCompleted
from scte.contracts.members import MemberRegistered, MemberStatusChanged

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def processed(service: Any, n: int) -> bool:
    return bool(await service.processed() >= n)


async def test_figures_follow_events_and_export_as_csv(service: Any) -> None:
    for m in ("m1", "m2", "m3"):
        await service.publish(
            MemberRegistered(member_id=m, email=f"{m}@x.org", display_name=m, registered_at=NOW), topic="members"
        )
    await service.publish(
        MemberStatusChanged(member_id="m1", previous_status="prospect", status="active", changed_at=NOW),
        topic="members",
    )
    award = CertificationAwarded(
        certification_id="c1",
        member_id="m1",
        program="BPI",
        program_name="BPI",
        awarded_on=date(2026, 3, 10),
        expires_on=date(2029, 3, 10),
    )
    envelope = await service.publish(award, topic="certification")
    paid = OrderPaid(
        order_id="o1",
        member_id="m1",
        lines=(OrderLine(kind="dues", reference="m1", unit_price_cents=123405),),
        total_cents=123405,
        currency="USD",
        payment_method="card",
        paid_at=NOW,
    )
    await service.publish(paid, topic="commerce")
    await service.publish(
        CourseCompleted(
            completion_id="x1",
            enrollment_id="e1",
            member_id="m1",
            course_id="c",
            course_title="C",
            units=3,
            completed_at=datetime(2026, 2, 27, 23, 0, tzinfo=UTC),
        ),
        topic="learning",
    )
    await service.eventually(lambda: processed(service, 7))
    await service.redeliver(award, envelope)
    await service.eventually(lambda: processed(service, 8))

    staff = service.staff()
    r = await service.client.get("/reports/members_by_status", headers=staff)
    assert r.status_code == 200 and r.json()["rows"] == [["active", "1"], ["prospect", "2"]]
    r = await service.client.get("/reports/certifications_per_program_month.csv", headers=staff)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == "month,program,certifications\r\n2026-03,BPI,1\r\n"  # the redelivery counted once
    r = await service.client.get("/reports/revenue_per_month.csv", headers=staff)
    assert r.text == "month,currency,amount\r\n2026-03,USD,1234.05\r\n"
    r = await service.client.get("/reports/completions_per_month.csv", headers=staff)
    assert r.text == "month,completions\r\n2026-02,1\r\n"


async def test_report_run_publishes_report_ready(service: Any) -> None:
    r = await service.client.post("/reports/members_by_status/runs", headers=service.staff())
    assert r.status_code == 201, r.text
    run = r.json()
    ready = await service.published("report.ready.v1")
    assert [(e.report_id, e.requested_by, e.location) for e in ready] == [
        (run["report_id"], "staff-1", run["location"])
    ]
    r = await service.client.get(run["location"], headers=service.staff())
    assert r.status_code == 200 and r.text == "status,members\r\n"
    r = await service.client.get(run["location"], headers=service.auth("m1"))
    assert r.status_code == 403


async def test_access_and_bad_input(service: Any) -> None:
    assert (await service.client.get("/reports/members_by_status.csv")).status_code == 401
    r = await service.client.get("/reports/members_by_status.csv", headers=service.auth("m1"))
    assert r.status_code == 403 and r.json()["message"]
    r = await service.client.get("/reports/salaries.csv", headers=service.staff())
    assert r.status_code == 404 and "members_by_status" in r.json()["message"]
    r = await service.client.post("/reports/salaries/runs", headers=service.staff())
    assert r.status_code == 404
    r = await service.client.get("/reports/runs/not-an-id.csv", headers=service.staff())
    assert r.status_code == 422
    r = await service.client.get(f"/reports/runs/{'0' * 32}.csv", headers=service.staff())
    assert r.status_code == 404
