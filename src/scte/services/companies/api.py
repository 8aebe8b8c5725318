"""The companies REST API: companies, who works there, company roles and the rollup.

Staff create companies and manage any; a company's admins (from this service's roles, or a token
with `company_admin` for that company) invite members (scte.services.companies.invitations), manage
roles and end employments; admins and report viewers read its rollup and employee list; a member
joins a company only by accepting its invitation, and leaves it. Linking a member directly is staff's."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.contracts import Event
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.kit.app import BadRequest, Conflict, Context, DbSession, NotFound, ServiceContext
from scte.kit.auth import CurrentPrincipal, Forbidden, Principal, require_role
from scte.kit.bounds import IsoDate
from scte.kit.db import serialize

from .db import cert_views, companies, company_roles, employments, member_views
from .domain import (
    CompaniesError,
    CompanyRole,
    Employment,
    can_manage,
    can_view_reports,
    revoke_role,
    start_employment,
)
from .handlers import TOPIC
from .store import Emit, compute, recompute

__all__ = ["router"]

router = APIRouter(tags=["companies"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompanyIn(Model):
    company_id: Id | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    admin_member_id: Id | None = None
    """The first admin, linked as an employee too."""


class CompanyOut(BaseModel):
    company_id: str
    name: str
    currency: str


class EmploymentIn(Model):
    member_id: Id
    """Whom to link."""
    started_on: IsoDate | None = None


class EmployeeOut(BaseModel):
    member_id: str
    display_name: str | None
    email: str | None
    status: str | None
    designations: list[str]
    started_on: date
    roles: list[str]
    certifications: list[dict[str, str | None]]


class RolesIn(Model):
    roles: list[Literal["admin", "report_viewer"]] = Field(max_length=2)


class RollupOut(BaseModel):
    company_id: str
    as_of: datetime
    employee_count: int
    certified_headcount: dict[str, int]
    expiring_within_days: int
    expiring_count: int
    training_spend_cents: int
    currency: str


def _emitter(ctx: ServiceContext, session: AsyncSession) -> Emit:
    async def emit(event: Event) -> object:
        return await ctx.publisher.publish(session, event, topic=TOPIC)

    return emit


async def _company(session: AsyncSession, company_id: str) -> CompanyOut:
    row = (await session.execute(select(companies).where(companies.c.company_id == company_id))).first()
    if row is None:
        raise NotFound(f"no company {company_id}")
    return CompanyOut(company_id=row.company_id, name=row.name, currency=row.currency)


async def _roles(session: AsyncSession, company_id: str, member_id: str) -> set[CompanyRole]:
    rows = await session.scalars(
        select(company_roles.c.role).where(
            company_roles.c.company_id == company_id, company_roles.c.member_id == member_id
        )
    )
    return {CompanyRole(r) for r in rows}


async def _ensure(session: AsyncSession, principal: Principal, company_id: str, *, manage: bool) -> None:
    """Staff, or an admin (manage) / admin or report viewer (read) of this company."""
    if principal.is_staff:
        return
    if "company_admin" in principal.roles and principal.company_id == company_id:
        return
    roles = await _roles(session, company_id, principal.member_id)
    if (can_manage(roles) if manage else can_view_reports(roles)) is False:
        raise Forbidden(
            "only this company's administrators may do this" if manage else "you may not see this company's figures"
        )


async def _set_roles(
    ctx: ServiceContext, session: AsyncSession, company_id: str, member_id: str, roles: set[CompanyRole]
) -> None:
    await session.execute(
        delete(company_roles).where(company_roles.c.company_id == company_id, company_roles.c.member_id == member_id)
    )
    for role in sorted(roles):
        await session.execute(
            company_roles.insert().values(company_id=company_id, member_id=member_id, role=role.value)
        )
    event = CompanyRolesChanged(
        company_id=company_id,
        member_id=member_id,
        roles=tuple(r.value for r in sorted(roles)),
        changed_at=ctx.clock.now(),
    )
    await ctx.publisher.publish(session, event, topic=TOPIC)


async def _link(ctx: ServiceContext, session: AsyncSession, company_id: str, member_id: str, started_on: date) -> bool:
    """Make `member_id` an employee from `started_on`; False when they are one already. Callers have
    the member's consent (an accepted invitation) or are staff."""
    await serialize(session, f"employment:{company_id}:{member_id}")
    links = [
        Employment(r.member_id, r.company_id, r.started_on, r.ended_on)
        for r in await session.execute(
            select(employments).where(employments.c.company_id == company_id, employments.c.member_id == member_id)
        )
    ]
    if any(link.ended_on is None for link in links):
        return False
    try:
        reopen = start_employment(links, started_on)
    except CompaniesError as exc:
        raise Conflict(str(exc)) from None
    if reopen is not None:
        await session.execute(
            update(employments)
            .where(
                employments.c.company_id == company_id,
                employments.c.member_id == member_id,
                employments.c.started_on == reopen.started_on,
            )
            .values(ended_on=None)
        )
    else:
        await session.execute(
            employments.insert().values(
                company_id=company_id, member_id=member_id, started_on=started_on, ended_on=None
            )
        )
    event = CompanyEmploymentChanged(
        company_id=company_id, member_id=member_id, employed=True, started_on=started_on, changed_at=ctx.clock.now()
    )
    await ctx.publisher.publish(session, event, topic=TOPIC)
    return True


def _slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "company"
    return f"{base}-{uuid.uuid4().hex[:6]}"


@router.post("/companies", status_code=201, summary="Create a company (staff)")
async def create_company(body: CompanyIn, ctx: Context, session: DbSession, principal: Staff) -> CompanyOut:
    company_id = body.company_id or _slug(body.name)
    async with session.begin():
        exists = await session.scalar(select(companies.c.company_id).where(companies.c.company_id == company_id))
        if exists is not None:
            raise Conflict(f"company {company_id} exists already")
        await session.execute(
            companies.insert().values(
                company_id=company_id, name=body.name.strip(), currency=body.currency, created_at=ctx.clock.now()
            )
        )
        if body.admin_member_id is not None:
            await _link(ctx, session, company_id, body.admin_member_id, ctx.clock.today())
            await _set_roles(ctx, session, company_id, body.admin_member_id, {CompanyRole.ADMIN})
        await recompute(session, company_id, ctx.clock.now(), _emitter(ctx, session))
    return CompanyOut(company_id=company_id, name=body.name.strip(), currency=body.currency)


@router.get("/companies", summary="All companies (to pick one's employer)")
async def list_companies(session: DbSession, principal: CurrentPrincipal) -> list[CompanyOut]:
    rows = await session.execute(select(companies).order_by(companies.c.name))
    return [CompanyOut(company_id=r.company_id, name=r.name, currency=r.currency) for r in rows]


@router.get("/companies/{company_id}", summary="A company")
async def get_company(company_id: IdPath, session: DbSession, principal: CurrentPrincipal) -> CompanyOut:
    return await _company(session, company_id)


@router.post(
    "/companies/{company_id}/employees",
    status_code=201,
    summary="Link a member to the company directly (staff; companies invite, members accept)",
)
async def add_employee(
    company_id: IdPath, body: EmploymentIn, ctx: Context, session: DbSession, principal: Staff
) -> dict[str, str | bool]:
    """Staff only: a company admin linking any member id read their e-mail and certifications without
    their consent, and a member could join any company. Companies use invitations instead."""
    member_id = body.member_id
    started_on = body.started_on or ctx.clock.today()
    if started_on > ctx.clock.today():
        raise BadRequest("an employment cannot start in the future")
    async with session.begin():
        await _company(session, company_id)
        linked = await _link(ctx, session, company_id, member_id, started_on)
        if not linked:
            raise Conflict(f"{member_id} already works for {company_id}")
        await recompute(session, company_id, ctx.clock.now(), _emitter(ctx, session))
    return {"company_id": company_id, "member_id": member_id, "linked": True}


@router.delete("/companies/{company_id}/employees/{member_id}", summary="End a member's employment")
async def remove_employee(
    company_id: IdPath, member_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> dict[str, str | bool]:
    today = ctx.clock.today()
    async with session.begin():
        await _company(session, company_id)
        if member_id != principal.member_id:
            await _ensure(session, principal, company_id, manage=True)
        started = await session.scalar(
            select(employments.c.started_on).where(
                employments.c.company_id == company_id,
                employments.c.member_id == member_id,
                employments.c.ended_on.is_(None),
            )
        )
        if started is None:
            raise NotFound(f"{member_id} does not work for {company_id}")
        roles = await _roles(session, company_id, member_id)
        if CompanyRole.ADMIN in roles:
            grants = await _grants(session, company_id)
            try:
                revoke_role(grants, member_id, CompanyRole.ADMIN)
            except CompaniesError as exc:
                raise Conflict(str(exc)) from None
        if roles:
            await _set_roles(ctx, session, company_id, member_id, set())
        ended_on = max(today, started)
        await session.execute(
            update(employments)
            .where(
                employments.c.company_id == company_id,
                employments.c.member_id == member_id,
                employments.c.started_on == started,
            )
            .values(ended_on=ended_on)
        )
        event = CompanyEmploymentChanged(
            company_id=company_id,
            member_id=member_id,
            employed=False,
            started_on=started,
            ended_on=ended_on,
            changed_at=ctx.clock.now(),
        )
        await ctx.publisher.publish(session, event, topic=TOPIC)
        await recompute(session, company_id, ctx.clock.now(), _emitter(ctx, session))
    return {"company_id": company_id, "member_id": member_id, "linked": False}


async def _grants(session: AsyncSession, company_id: str) -> dict[str, set[CompanyRole]]:
    grants: dict[str, set[CompanyRole]] = {}
    for member_id, role in await session.execute(
        select(company_roles.c.member_id, company_roles.c.role).where(company_roles.c.company_id == company_id)
    ):
        grants.setdefault(member_id, set()).add(CompanyRole(role))
    return grants


@router.get("/companies/{company_id}/employees", summary="Current employees (admins, report viewers, staff)")
async def list_employees(
    company_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> list[EmployeeOut]:
    await _company(session, company_id)
    await _ensure(session, principal, company_id, manage=False)
    today = ctx.clock.today()
    links = [
        r
        for r in await session.execute(select(employments).where(employments.c.company_id == company_id))
        if r.started_on <= today and (r.ended_on is None or today < r.ended_on)
    ]
    ids = [link.member_id for link in links]
    people = {
        r.member_id: r for r in await session.execute(select(member_views).where(member_views.c.member_id.in_(ids)))
    }
    certs: dict[str, list[dict[str, str | None]]] = {}
    for c in await session.execute(select(cert_views).where(cert_views.c.member_id.in_(ids))):
        certs.setdefault(c.member_id, []).append(
            {
                "certification_id": c.certification_id,
                "program": c.program,
                "expires_on": c.expires_on.isoformat() if c.expires_on else None,
                "state": "held" if c.held else "not held",
            }
        )
    grants = await _grants(session, company_id)
    out = []
    for link in sorted(links, key=lambda r: r.member_id):
        person = people.get(link.member_id)
        out.append(
            EmployeeOut(
                member_id=link.member_id,
                display_name=person.display_name if person else None,
                email=person.email if person else None,
                status=person.status if person else None,
                designations=list(person.designations or []) if person else [],
                started_on=link.started_on,
                roles=sorted(r.value for r in grants.get(link.member_id, set())),
                certifications=certs.get(link.member_id, []),
            )
        )
    return out


@router.get("/companies/{company_id}/roles", summary="Who holds which role (admins, staff)")
async def list_roles(company_id: IdPath, session: DbSession, principal: CurrentPrincipal) -> dict[str, list[str]]:
    await _company(session, company_id)
    await _ensure(session, principal, company_id, manage=True)
    return {
        member: sorted(r.value for r in roles) for member, roles in sorted((await _grants(session, company_id)).items())
    }


@router.put("/companies/{company_id}/roles/{member_id}", summary="Set a member's roles (admins, staff)")
async def set_roles(
    company_id: IdPath, member_id: IdPath, body: RolesIn, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> dict[str, list[str]]:
    wanted = {CompanyRole(r) for r in body.roles}
    async with session.begin():
        await _company(session, company_id)
        await _ensure(session, principal, company_id, manage=True)
        grants = await _grants(session, company_id)
        if CompanyRole.ADMIN in grants.get(member_id, set()) and CompanyRole.ADMIN not in wanted:
            try:
                revoke_role(grants, member_id, CompanyRole.ADMIN)
            except CompaniesError as exc:
                raise Conflict(str(exc)) from None
        if wanted:
            employed = await session.scalar(
                select(employments.c.member_id).where(
                    employments.c.company_id == company_id,
                    employments.c.member_id == member_id,
                    employments.c.ended_on.is_(None),
                )
            )
            if employed is None:
                raise BadRequest(f"{member_id} does not work for {company_id}: link them first")
        await _set_roles(ctx, session, company_id, member_id, wanted)
    return {member_id: sorted(r.value for r in wanted)}


@router.get("/companies/{company_id}/rollup", summary="Certified headcount, expiring soon, training spend")
async def get_rollup(company_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal) -> RollupOut:
    await _company(session, company_id)
    await _ensure(session, principal, company_id, manage=False)
    now = ctx.clock.now()
    rollup = await compute(session, company_id, now)
    if rollup is None:
        raise NotFound(f"no company {company_id}")
    return RollupOut(
        company_id=company_id,
        as_of=now,
        employee_count=rollup.employee_count,
        certified_headcount=rollup.certified_headcount,
        expiring_within_days=rollup.expiring_within_days,
        expiring_count=rollup.expiring_count,
        training_spend_cents=rollup.training_spend_cents,
        currency=rollup.currency,
    )
