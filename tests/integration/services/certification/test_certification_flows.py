"""Certification's handlers on the real broker engine and the service's migrated database
(SQLite and PostgreSQL): awards, renewals, the unit ledger, and milestones on the harness's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from b_support import KINDS, harness
from sqlalchemy import func, select

from scte.bus.consumer import Outcome
from scte.bus.storage import bus_schedule
from scte.bus.testing import BusHarness
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
    RecertRequirementsMet,
    RecertUnitsCredited,
    RecertWindowOpened,
)
from scte.contracts.learning import CourseCompleted, EventAttended, ExamPassed
from scte.contracts.members import MembershipRenewed
from scte.services.certification import db
from scte.services.certification.domain import add_months
from scte.services.certification.handlers import HANDLERS
from scte.services.certification.service import QUEUE


@pytest.fixture(params=KINDS)
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    async with harness(
        request.param, tmp_path, service="certification", metadata=db.metadata, queue=QUEUE, handlers=HANDLERS
    ) as found:
        yield found


def exam_passed(bus: BusHarness, member: str = "m1", program: str = "BPI", attempt: str = "a1") -> ExamPassed:
    return ExamPassed(
        attempt_id=attempt, member_id=member, program=program, score_percent=Decimal("80.00"), taken_at=bus.now()
    )


def completed(bus: BusHarness, units: int, completion: str, member: str = "m1") -> CourseCompleted:
    return CourseCompleted(
        completion_id=completion,
        enrollment_id=f"e-{completion}",
        member_id=member,
        course_id="fiber-fundamentals",
        course_title="Fiber Optic Fundamentals",
        units=units,
        completed_at=bus.now(),
    )


def advance_to(bus: BusHarness, day: date) -> None:
    target = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    bus.advance((target - bus.now()).total_seconds())


async def test_exam_passed_awards_a_certification_and_schedules_its_milestones(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus), topic="learning")
    await bus.run_until_idle()
    [awarded] = bus.published(CertificationAwarded)
    today = bus.now().date()
    assert (awarded.member_id, awarded.program, awarded.awarded_on) == ("m1", "BPI", today)
    assert awarded.expires_on == add_months(today, 36)
    assert awarded.program_name == "Broadband Premises Installer"
    assert awarded.attempt_id == "a1"
    async with bus.sessionmaker() as session:
        rows = (await session.execute(select(db.certifications))).mappings().all()
        scheduled = await session.scalar(select(func.count()).select_from(bus_schedule))
    assert [(r["member_id"], r["program"], r["status"]) for r in rows] == [("m1", "BPI", "active")]
    assert scheduled == 3  # window opens, expires, lapses (emeritus is 21 years away)


async def test_a_redelivered_exam_pass_awards_once(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus), topic="learning")
    await bus.run_until_idle()
    [sent] = [s for s in bus.transport.sent if s.message.attributes["ce-type"] == ExamPassed.event_type]
    bus.advance(600)  # past the FIFO deduplication window: only the inbox can tell
    await bus.transport.send(
        "certification",
        [
            sent.message.__class__(
                body=sent.message.body, attributes=sent.message.attributes, group_id="m1", deduplication_id="again"
            )
        ],
    )
    outcomes = await bus.run_until_idle()
    assert Outcome.DUPLICATE in outcomes
    assert len(bus.published(CertificationAwarded)) == 1


async def test_passing_again_while_held_changes_nothing_and_in_the_window_renews(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus, attempt="a1"), topic="learning")
    await bus.run_until_idle()
    [awarded] = bus.published(CertificationAwarded)
    await bus.publish(exam_passed(bus, attempt="a2"), topic="learning")
    await bus.run_until_idle()
    assert bus.published(CertificationRenewed) == []

    advance_to(bus, add_months(awarded.expires_on, -2))  # in the renewal window
    await bus.run_until_idle()
    [opened] = bus.published(RecertWindowOpened)
    assert opened.certification_id == awarded.certification_id and opened.units_required == 12
    await bus.publish(exam_passed(bus, attempt="a3"), topic="learning")
    await bus.run_until_idle()
    [renewed] = bus.published(CertificationRenewed)
    assert renewed.basis == "exam"
    assert renewed.cycle_start == awarded.expires_on  # from the previous expiry, not the renewal day
    assert renewed.expires_on == add_months(awarded.expires_on, 36)
    assert len(bus.published(CertificationAwarded)) == 1

    advance_to(bus, awarded.expires_on + timedelta(days=1))  # the old cycle's expiry milestone is stale
    await bus.run_until_idle()
    assert bus.published(CertificationExpired) == []


async def test_units_credited_and_requirements_met_once_at_the_threshold(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus), topic="learning")
    await bus.run_until_idle()
    for index, units in enumerate((4, 4, 3)):
        await bus.publish(completed(bus, units, f"c{index}"), topic="learning")
    await bus.run_until_idle()
    assert [c.units for c in bus.published(RecertUnitsCredited)] == [4, 4, 3]
    assert bus.published(RecertRequirementsMet) == []

    await bus.publish(completed(bus, 2, "c3"), topic="learning")  # 13 of 12
    await bus.publish(
        EventAttended(
            attendance_id="ev1",
            member_id="m1",
            event_id="expo",
            event_name="Cable-Tec Expo",
            units=2,
            attended_on=bus.now().date(),
        ),
        topic="learning",
    )
    await bus.run_until_idle()
    [met] = bus.published(RecertRequirementsMet)
    assert (met.member_id, met.program, met.units_earned, met.units_required) == ("m1", "BPI", 13, 12)
    credited = bus.published(RecertUnitsCredited)
    assert [c.credit_id for c in credited][-2:] == ["course:c3", "event:ev1"]
    assert credited[-1].source == "event_attendance"


async def test_membership_renewed_credits_one_unit_per_year(bus: BusHarness) -> None:
    start = bus.now().date()
    await bus.publish(
        MembershipRenewed(
            member_id="m1", order_id="o1", term_start=start, term_end=add_months(start, 12), renewed_at=bus.now()
        ),
        topic="members",
    )
    await bus.run_until_idle()
    [credit] = bus.published(RecertUnitsCredited)
    assert (credit.units, credit.source, credit.earned_on) == (1, "membership_year", start)


async def test_milestones_are_delivered_on_their_days(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus), topic="learning")
    await bus.run_until_idle()
    [awarded] = bus.published(CertificationAwarded)
    expires = awarded.expires_on

    advance_to(bus, add_months(expires, -6) - timedelta(days=1))
    await bus.run_until_idle()
    assert bus.published(RecertWindowOpened) == []  # not a day early

    advance_to(bus, add_months(expires, -6))
    await bus.run_until_idle()
    [opened] = bus.published(RecertWindowOpened)
    assert opened.opened_on == add_months(expires, -6) and opened.lapses_on == add_months(expires, 12)

    advance_to(bus, expires)
    await bus.run_until_idle()
    [expired] = bus.published(CertificationExpired)
    assert expired.expired_on == expires

    advance_to(bus, add_months(expires, 12))
    await bus.run_until_idle()
    [lapsed] = bus.published(CertificationLapsed)
    assert lapsed.lapsed_on == add_months(expires, 12)
    async with bus.sessionmaker() as session:
        status = await session.scalar(select(db.certifications.c.status))
    assert status == "lapsed"

    # After a lapse, passing the exam again is a new certification.
    await bus.publish(exam_passed(bus, attempt="again"), topic="learning")
    await bus.run_until_idle()
    assert len(bus.published(CertificationAwarded)) == 2
    assert await bus.dead_letters("certification") == []


async def test_an_exam_for_no_program_awards_nothing(bus: BusHarness) -> None:
    await bus.publish(exam_passed(bus, program="XYZ"), topic="learning")
    await bus.run_until_idle()
    assert bus.published(CertificationAwarded) == []
    assert await bus.dead_letters("certification") == []
