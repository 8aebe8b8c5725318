"""The certification service's REST API: a member's certifications and units, renewal, staff views.

A member sees and renews their own certifications; staff see everyone's. Statuses are computed for
today on the platform clock, so what a member reads agrees with the milestones the scheduler runs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Publish, Schedule
from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.bus.scheduler import schedule as schedule_event
from scte.kit.app import Context, DbSession, ServiceContext
from scte.kit.auth import CurrentPrincipal, Principal, ensure_self_or_staff, require_role
from scte.kit.bounds import IsoDate

from . import db
from .domain import (
    PROGRAMS,
    Certification,
    CertificationStatus,
    Program,
    UnitLedger,
    check_renewal,
    emeritus_eligible_on,
    lapses_on,
    renewal_window_opens_on,
    status_at,
)
from .handlers import certifications_of, get_certification, ledger_of, renew_certification

__all__ = ["router"]

router = APIRouter(tags=["certification"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


def outbox(ctx: ServiceContext, session: AsyncSession) -> Publish:
    async def publish(event: Event, *, topic: str) -> Envelope:
        return await ctx.publisher.publish(session, event, topic=topic)

    return publish


def scheduler(ctx: ServiceContext, session: AsyncSession) -> Schedule:
    async def schedule(
        event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
    ) -> Envelope:
        return await schedule_event(session, event, deliver_at=deliver_at, topic=topic, queue=queue, source=ctx.name)

    return schedule


class ProgramOut(BaseModel):
    code: str
    name: str
    units_per_cycle: int


class CertificationOut(BaseModel):
    certification_id: str
    member_id: str
    program: str
    program_name: str
    status: CertificationStatus
    held: bool
    designation: str | None
    originally_awarded_on: date
    cycle_start: date
    expires_on: date
    renewal_opens_on: date
    lapses_on: date
    emeritus_on: date | None
    emeritus_eligible_on: date
    units_earned: int
    units_required: int
    renewable_now: bool
    renewal_refused_because: str | None


class CreditOut(BaseModel):
    credit_id: str
    source: str
    units: int
    earned_on: date
    reference: str


class UnitsOut(BaseModel):
    member_id: str
    total_units: int
    credits: list[CreditOut]
    cycles: list[dict[str, object]]


def _view(cert: Certification, ledger: UnitLedger, today: date) -> CertificationOut:
    status = status_at(cert, today)
    check = check_renewal(cert, ledger, today)
    designation = None
    if status.is_held:
        designation = f"{cert.program.value}-E" if status is CertificationStatus.EMERITUS else cert.program.value
    return CertificationOut(
        certification_id=cert.certification_id,
        member_id=cert.member_id,
        program=cert.program.value,
        program_name=PROGRAMS[cert.program].name,
        status=status,
        held=status.is_held,
        designation=designation,
        originally_awarded_on=cert.originally_awarded_on,
        cycle_start=cert.cycle_start,
        expires_on=cert.expires_on,
        renewal_opens_on=renewal_window_opens_on(cert),
        lapses_on=lapses_on(cert),
        emeritus_on=cert.emeritus_on,
        emeritus_eligible_on=emeritus_eligible_on(cert),
        units_earned=check.units_earned,
        units_required=check.units_required,
        renewable_now=check.possible,
        renewal_refused_because=check.reason,
    )


@router.get("/programs", summary="SCTE's certification programs")
async def list_programs(_: CurrentPrincipal) -> list[ProgramOut]:
    return [ProgramOut(code=p.code.value, name=p.name, units_per_cycle=p.units_per_cycle) for p in PROGRAMS.values()]


@router.get("/members/{member_id}/certifications", summary="A member's certifications (self or staff)")
async def member_certifications(
    member_id: IdPath, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> list[CertificationOut]:
    ensure_self_or_staff(principal, member_id)
    today = ctx.clock.today()
    ledger = await ledger_of(session, member_id)
    return [_view(c, ledger, today) for c in await certifications_of(session, member_id)]


@router.get("/members/{member_id}/units", summary="A member's recertification-unit ledger (self or staff)")
async def member_units(member_id: IdPath, principal: CurrentPrincipal, ctx: Context, session: DbSession) -> UnitsOut:
    ensure_self_or_staff(principal, member_id)
    ledger = await ledger_of(session, member_id)
    certs = await certifications_of(session, member_id)
    credits = [
        CreditOut(
            credit_id=c.credit_id, source=c.source.value, units=c.units, earned_on=c.earned_on, reference=c.reference
        )
        for c in ledger
    ]
    cycles: list[dict[str, object]] = [
        {
            "certification_id": c.certification_id,
            "program": c.program.value,
            "cycle_start": c.cycle_start.isoformat(),
            "expires_on": c.expires_on.isoformat(),
            "units_earned": ledger.units_in_cycle(c),
            "units_required": c.units_required,
        }
        for c in certs
    ]
    return UnitsOut(member_id=member_id, total_units=sum(c.units for c in credits), credits=credits, cycles=cycles)


@router.get("/certifications/{certification_id}", summary="One certification (its holder or staff)")
async def read_certification(
    certification_id: IdPath, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> CertificationOut:
    cert = await get_certification(session, certification_id)
    ensure_self_or_staff(principal, cert.member_id)
    return _view(cert, await ledger_of(session, cert.member_id), ctx.clock.today())


@router.post("/certifications/{certification_id}/renew", summary="Renew with the cycle's units (the holder)")
async def renew(
    certification_id: IdPath, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> CertificationOut:
    today = ctx.clock.today()
    async with session.begin():
        cert = await get_certification(session, certification_id)
        ensure_self_or_staff(principal, cert.member_id)
        renewed = await renew_certification(
            session, outbox(ctx, session), scheduler(ctx, session), certification_id, today
        )
        ledger = await ledger_of(session, cert.member_id)
    return _view(renewed, ledger, today)


@router.get("/certifications", summary="Certifications by program, status or expiry (staff)")
async def staff_list(
    _: Staff,
    ctx: Context,
    session: DbSession,
    program: Annotated[Program | None, Query()] = None,
    status: Annotated[CertificationStatus | None, Query()] = None,
    expiring_before: Annotated[IsoDate | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CertificationOut]:
    query = select(db.certifications).order_by(db.certifications.c.expires_on, db.certifications.c.certification_id)
    if program is not None:
        query = query.where(db.certifications.c.program == program.value)
    if expiring_before is not None:
        query = query.where(db.certifications.c.expires_on < expiring_before)
    today = ctx.clock.today()
    out: list[CertificationOut] = []
    ledgers: dict[str, UnitLedger] = {}
    for row in (await session.execute(query)).mappings():
        cert = db.row_to_certification(row)
        if status is not None and status_at(cert, today) is not status:
            continue
        if cert.member_id not in ledgers:
            ledgers[cert.member_id] = await ledger_of(session, cert.member_id)
        out.append(_view(cert, ledgers[cert.member_id], today))
        if len(out) >= limit:
            break
    return out
