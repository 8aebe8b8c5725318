"""What the certification service does: award and renew certifications, keep the unit ledger, and
walk each certification through its life cycle on the days its milestones fall.

Every function runs in the caller's transaction with its `publish` (the outbox) and `schedule` (the
bus scheduler), so a certification, its events and its future milestones commit together. The
milestones are private messages (`MilestoneDue`) scheduled onto this service's own queue: they are
delivered on the day, in order with the member's other events (the queue is FIFO per member), and a
milestone of a cycle that a renewal replaced finds the certification changed and does nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish, Schedule
from scte.bus.contracts import Event, event
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationEmeritusGranted,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
    RecertRequirementsMet,
    RecertUnitsCredited,
    RecertWindowOpened,
)
from scte.contracts.learning import CourseCompleted, EventAttended, ExamPassed
from scte.contracts.members import MembershipRenewed, MembershipStarted

from . import db
from .domain import (
    PROGRAMS,
    Certification,
    CertificationError,
    CertificationStatus,
    ExamEffect,
    MilestoneKind,
    Program,
    RenewalBasis,
    UnitCredit,
    UnitLedger,
    award,
    check_renewal,
    course_credit,
    effect_of_exam_pass,
    event_credit,
    grant_emeritus,
    is_emeritus_due,
    lapses_on,
    membership_credits,
    milestones,
    renew,
    renewal_window_opens_on,
    requirements_just_met,
    status_at,
)

__all__ = [
    "HANDLERS",
    "QUEUE_NAME",
    "TOPIC",
    "MilestoneDue",
    "NotFound",
    "certifications_of",
    "credit_units",
    "ledger_of",
    "on_course_completed",
    "on_event_attended",
    "on_exam_passed",
    "on_membership",
    "on_milestone",
    "renew_certification",
]

TOPIC = "certification"
QUEUE_NAME = "certification"
log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such certification."""


@event
class MilestoneDue(Event):
    """A day in a certification's cycle has come (private to this service: scheduled onto its own
    queue, never published on a topic). `expires_on` names the cycle it was scheduled for."""

    event_type: ClassVar[str] = "certification.milestone_due.v1"

    certification_id: str
    member_id: str
    kind: Literal["window_opens", "expires", "lapses", "emeritus_eligible"]
    on: date
    expires_on: date

    def subject(self) -> str | None:
        return self.member_id


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


# --- reading ---------------------------------------------------------------------------------------


async def certifications_of(session: AsyncSession, member_id: str) -> list[Certification]:
    rows = (
        (
            await session.execute(
                select(db.certifications)
                .where(db.certifications.c.member_id == member_id)
                .order_by(db.certifications.c.originally_awarded_on, db.certifications.c.certification_id)
            )
        )
        .mappings()
        .all()
    )
    return [db.row_to_certification(r) for r in rows]


async def get_certification(session: AsyncSession, certification_id: str) -> Certification:
    row = (
        (
            await session.execute(
                select(db.certifications).where(db.certifications.c.certification_id == certification_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no certification {certification_id}")
    return db.row_to_certification(row)


async def ledger_of(session: AsyncSession, member_id: str) -> UnitLedger:
    rows = (await session.execute(select(db.unit_credits).where(db.unit_credits.c.member_id == member_id))).mappings()
    return db.ledger_of(member_id, rows)


# --- writing ---------------------------------------------------------------------------------------


async def _save(
    session: AsyncSession,
    cert: Certification,
    status: CertificationStatus,
    *,
    new: bool = False,
    attempt_id: str | None = None,
) -> None:
    values = {
        "member_id": cert.member_id,
        "program": cert.program.value,
        "originally_awarded_on": cert.originally_awarded_on,
        "cycle_start": cert.cycle_start,
        "expires_on": cert.expires_on,
        "emeritus_on": cert.emeritus_on,
        "status": status.value,
        "updated_at": datetime.now(UTC),
    }
    if new:
        await session.execute(
            insert(db.certifications).values(certification_id=cert.certification_id, attempt_id=attempt_id, **values)
        )
    else:
        await session.execute(
            update(db.certifications)
            .where(db.certifications.c.certification_id == cert.certification_id)
            .values(**values)
        )


async def _set_status(session: AsyncSession, cert: Certification, status: CertificationStatus) -> None:
    await session.execute(
        update(db.certifications)
        .where(db.certifications.c.certification_id == cert.certification_id)
        .values(status=status.value, updated_at=datetime.now(UTC))
    )


async def _schedule_milestones(schedule: Schedule, cert: Certification) -> None:
    for milestone in milestones(cert):
        await schedule(
            MilestoneDue(
                certification_id=cert.certification_id,
                member_id=cert.member_id,
                kind=milestone.kind.value,
                on=milestone.on,
                expires_on=cert.expires_on,
            ),
            deliver_at=start_of(milestone.on),
            queue=QUEUE_NAME,
        )


async def _grant_emeritus_if_due(
    session: AsyncSession, publish: Publish, cert: Certification, on: date
) -> Certification:
    if not is_emeritus_due(cert, on):
        return cert
    granted = grant_emeritus(cert, on)
    await _save(session, granted, CertificationStatus.EMERITUS)
    await publish(
        CertificationEmeritusGranted(
            certification_id=cert.certification_id,
            member_id=cert.member_id,
            program=cert.program.value,
            originally_awarded_on=cert.originally_awarded_on,
            granted_on=on,
        ),
        topic=TOPIC,
    )
    return granted


async def _renew(
    session: AsyncSession,
    publish: Publish,
    schedule: Schedule,
    cert: Certification,
    on: date,
    basis: RenewalBasis,
) -> Certification:
    ledger = await ledger_of(session, cert.member_id)
    earned = ledger.units_in_cycle(cert)
    renewed = renew(cert, ledger, on, basis)
    await _save(session, renewed, status_at(renewed, on))
    await session.execute(
        insert(db.renewals).values(
            renewal_id=uuid.uuid4().hex,
            certification_id=cert.certification_id,
            member_id=cert.member_id,
            renewed_on=on,
            basis=basis.value,
            previous_expires_on=cert.expires_on,
            cycle_start=renewed.cycle_start,
            expires_on=renewed.expires_on,
            units_earned=earned,
        )
    )
    await publish(
        CertificationRenewed(
            certification_id=cert.certification_id,
            member_id=cert.member_id,
            program=cert.program.value,
            renewed_on=on,
            cycle_start=renewed.cycle_start,
            expires_on=renewed.expires_on,
            basis=basis.value,
            units_earned=earned,
        ),
        topic=TOPIC,
    )
    granted = await _grant_emeritus_if_due(session, publish, renewed, on)
    if granted.emeritus_on is None:
        await _schedule_milestones(schedule, renewed)
    return granted


async def renew_certification(
    session: AsyncSession, publish: Publish, schedule: Schedule, certification_id: str, on: date
) -> Certification:
    """Renew on the strength of the cycle's units (the member's request); refused with the reason."""
    cert = await get_certification(session, certification_id)
    return await _renew(session, publish, schedule, cert, on, RenewalBasis.UNITS)


@dataclass(frozen=True)
class CreditResult:
    credited: bool
    requirements_met: list[str]
    """Certification ids whose cycle this credit brought to the requirement."""


async def credit_units(session: AsyncSession, publish: Publish, credit: UnitCredit) -> CreditResult:
    """Add a credit to the ledger (once per `credit_id`); tell the member, once per cycle, when a
    certification has enough units to be renewed."""
    seen = await session.scalar(
        select(db.unit_credits.c.credit_id).where(db.unit_credits.c.credit_id == credit.credit_id)
    )
    if seen is not None:
        return CreditResult(False, [])
    ledger = await ledger_of(session, credit.member_id)
    certs = await certifications_of(session, credit.member_id)
    before = {c.certification_id: ledger.units_in_cycle(c) for c in certs}
    ledger.credit(credit)
    await session.execute(
        insert(db.unit_credits).values(
            credit_id=credit.credit_id,
            member_id=credit.member_id,
            source=credit.source.value,
            units=credit.units,
            earned_on=credit.earned_on,
            reference=credit.reference,
            credited_at=datetime.now(UTC),
        )
    )
    await publish(
        RecertUnitsCredited(
            credit_id=credit.credit_id,
            member_id=credit.member_id,
            source=credit.source.value,
            units=credit.units,
            earned_on=credit.earned_on,
            reference=credit.reference,
        ),
        topic=TOPIC,
    )
    met: list[str] = []
    for cert in certs:
        if status_at(cert, credit.earned_on) in (CertificationStatus.EMERITUS, CertificationStatus.LAPSED):
            continue
        after = ledger.units_in_cycle(cert)
        if requirements_just_met(cert, before[cert.certification_id], after):
            met.append(cert.certification_id)
            await publish(
                RecertRequirementsMet(
                    certification_id=cert.certification_id,
                    member_id=cert.member_id,
                    program=cert.program.value,
                    units_earned=after,
                    units_required=cert.units_required,
                    renewal_opens_on=renewal_window_opens_on(cert),
                ),
                topic=TOPIC,
            )
    return CreditResult(True, met)


# --- events ---------------------------------------------------------------------------------------


async def on_exam_passed(event: ExamPassed, session: AsyncSession, publish: Publish, schedule: Schedule) -> None:
    """Passing a program's exam awards the certification, renews it (in its window or expired), or,
    when it is held and not yet renewable, changes nothing (`effect_of_exam_pass`)."""
    if event.program not in PROGRAMS:
        log.warning(
            "exam.passed %s: %s is not a certification program, nothing to award", event.attempt_id, event.program
        )
        return
    program = Program(event.program)
    on = event.taken_at.date()
    held = [c for c in await certifications_of(session, event.member_id) if c.program is program]
    current = max(held, key=lambda c: (c.originally_awarded_on, c.expires_on)) if held else None
    effect = effect_of_exam_pass(current, on)
    if effect is ExamEffect.RENEW and current is not None:
        await _renew(session, publish, schedule, current, on, RenewalBasis.EXAM)
        return
    if effect is ExamEffect.NONE:
        log.info("exam.passed %s: %s already held by %s, nothing changes", event.attempt_id, program, event.member_id)
        return
    cert = award(uuid.uuid4().hex, event.member_id, program, on)
    await _save(session, cert, status_at(cert, on), new=True, attempt_id=event.attempt_id)
    await publish(
        CertificationAwarded(
            certification_id=cert.certification_id,
            member_id=cert.member_id,
            program=program.value,
            program_name=PROGRAMS[program].name,
            awarded_on=on,
            expires_on=cert.expires_on,
            attempt_id=event.attempt_id,
        ),
        topic=TOPIC,
    )
    await _schedule_milestones(schedule, cert)


async def on_course_completed(event: CourseCompleted, session: AsyncSession, publish: Publish) -> None:
    credit = course_credit(event.member_id, event.completion_id, event.units, event.completed_at.date())
    await credit_units(session, publish, credit)


async def on_event_attended(event: EventAttended, session: AsyncSession, publish: Publish) -> None:
    await credit_units(
        session, publish, event_credit(event.member_id, event.attendance_id, event.units, event.attended_on)
    )


async def on_membership(event: MembershipStarted | MembershipRenewed, session: AsyncSession, publish: Publish) -> None:
    """One unit per full year of the paid term, dated on the day that year begins."""
    for credit in membership_credits(event.member_id, event.term_start, event.term_end):
        await credit_units(session, publish, credit)


async def on_milestone(event: MilestoneDue, session: AsyncSession, publish: Publish) -> None:
    """Announce the status the day brings, once; a milestone of a replaced cycle does nothing."""
    try:
        cert = await get_certification(session, event.certification_id)
    except NotFound:
        log.warning("milestone %s for unknown certification %s", event.kind, event.certification_id)
        return
    if cert.expires_on != event.expires_on:
        return  # renewed since: the new cycle has its own milestones
    kind = MilestoneKind(event.kind)
    on = event.on
    status = status_at(cert, on)
    announced = await session.scalar(
        select(db.certifications.c.status).where(db.certifications.c.certification_id == cert.certification_id)
    )
    if kind is MilestoneKind.EMERITUS_ELIGIBLE:
        await _grant_emeritus_if_due(session, publish, cert, on)
        return
    if announced == status.value:
        return
    common: dict[str, Any] = {
        "certification_id": cert.certification_id,
        "member_id": cert.member_id,
        "program": cert.program.value,
    }
    if kind is MilestoneKind.WINDOW_OPENS and status is CertificationStatus.RENEWAL_DUE:
        ledger = await ledger_of(session, cert.member_id)
        await publish(
            RecertWindowOpened(
                **common,
                opened_on=on,
                expires_on=cert.expires_on,
                lapses_on=lapses_on(cert),
                units_earned=ledger.units_in_cycle(cert),
                units_required=cert.units_required,
            ),
            topic=TOPIC,
        )
    elif kind is MilestoneKind.EXPIRES and status is CertificationStatus.EXPIRED:
        await publish(CertificationExpired(**common, expired_on=on, lapses_on=lapses_on(cert)), topic=TOPIC)
    elif kind is MilestoneKind.LAPSES and status is CertificationStatus.LAPSED:
        await publish(CertificationLapsed(**common, lapsed_on=on), topic=TOPIC)
    else:
        return
    await _set_status(session, cert, status)


HANDLERS: dict[str | type[Event], Handler] = {
    ExamPassed.event_type: on_exam_passed,
    CourseCompleted.event_type: on_course_completed,
    EventAttended.event_type: on_event_attended,
    MembershipStarted.event_type: on_membership,
    MembershipRenewed.event_type: on_membership,
    MilestoneDue.event_type: on_milestone,
}
"""The events this service reacts to; `MilestoneDue` arrives from its own scheduler, not a topic."""


def renewal_check(cert: Certification, ledger: UnitLedger, on: date) -> tuple[bool, str | None]:
    check = check_renewal(cert, ledger, on)
    return check.possible, check.reason


__all__ += ["CertificationError", "renewal_check"]
