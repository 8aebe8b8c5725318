"""Invitations: how a member comes to work for a company with their consent.

A company's admin invites a member by member id or e-mail address; the member hears of it by mail
(company.invitation_sent, sent by notifications) and sees it in their own list; only their
acceptance makes them an employee, and only then does the company see their e-mail, status and
certifications. Before that the company sees what it typed itself, never whether the id or address
belongs to anyone, so invitations cannot be used to probe for members.

Who may call what:
- `POST/GET /companies/{c}/invitations`, `DELETE /companies/{c}/invitations/{id}`: the company's
  admins and staff;
- `GET /members/{m}/invitations`: the member themselves and staff;
- `POST /members/{m}/invitations/{id}/accept|refuse`: the member themselves only (consent is theirs;
  staff link members directly with `POST /companies/{c}/employees`).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.contracts.companies import CompanyInvitationSent
from scte.kit.app import Conflict, Context, DbSession, NotFound
from scte.kit.auth import CurrentPrincipal, Forbidden, ensure_self_or_staff
from scte.kit.db import serialize

from .api import Id, IdPath, _company, _emitter, _ensure, _link
from .db import invitations, member_views
from .domain import INVITATION_VALID_FOR, CompaniesError, Invitation, InvitationStatus
from .handlers import TOPIC
from .store import recompute

__all__ = ["router"]

router = APIRouter(tags=["invitations"])

InvitationPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")]


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_id: Id | None = None
    email: Email | None = None
    """One of the two: whom to invite."""

    @model_validator(mode="after")
    def _one_invitee(self) -> Self:
        if (self.member_id is None) == (self.email is None):
            raise ValueError("give either member_id or email")
        return self


class InvitationOut(BaseModel):
    """An invitation as its company sees it: whom it invited, as it typed it, and the answer."""

    invitation_id: str
    company_id: str
    member_id: str | None
    email: str | None
    invited_by: str
    status: str
    """pending, accepted, refused, withdrawn, or expired (pending past expires_at)."""
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None


class MemberInvitationOut(BaseModel):
    """An open invitation as the invited member sees it."""

    invitation_id: str
    company_id: str
    company_name: str
    invited_by: str
    created_at: datetime
    expires_at: datetime


class AnswerOut(BaseModel):
    invitation_id: str
    company_id: str
    member_id: str
    status: str
    employed: bool


def _invitation(row: object) -> Invitation:
    return Invitation(
        invitation_id=row.invitation_id,  # type: ignore[attr-defined]
        company_id=row.company_id,  # type: ignore[attr-defined]
        member_id=row.member_id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        status=InvitationStatus(row.status),  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
    )


def _company_view(row: object, now: datetime) -> InvitationOut:
    invitation = _invitation(row)
    status = invitation.status.value
    if invitation.status is InvitationStatus.PENDING and not invitation.is_open(now):
        status = "expired"
    return InvitationOut(
        invitation_id=invitation.invitation_id,
        company_id=invitation.company_id,
        member_id=None if invitation.email is not None else invitation.member_id,
        email=invitation.email,
        invited_by=row.invited_by,  # type: ignore[attr-defined]
        status=status,
        created_at=row.created_at,  # type: ignore[attr-defined]
        expires_at=invitation.expires_at,
        answered_at=row.answered_at,  # type: ignore[attr-defined]
    )


async def _member_email(session: AsyncSession, member_id: str) -> str | None:
    email = await session.scalar(select(member_views.c.email).where(member_views.c.member_id == member_id))
    return email.lower() if email else None


@router.post("/companies/{company_id}/invitations", status_code=201, summary="Invite a member (admins, staff)")
async def invite(
    company_id: IdPath, body: InvitationIn, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> InvitationOut:
    """The answer is the same whether or not the id or address belongs to a member."""
    now = ctx.clock.now()
    email = body.email.lower() if body.email is not None else None
    async with session.begin():
        company = await _company(session, company_id)
        await _ensure(session, principal, company_id, manage=True)
        await serialize(session, f"invitations:{company_id}")
        member_id = body.member_id
        if email is not None:
            member_id = await session.scalar(
                select(member_views.c.member_id).where(func.lower(member_views.c.email) == email).limit(1)
            )
        same_invitee = invitations.c.email == email if email is not None else invitations.c.member_id == member_id
        for row in await session.execute(
            select(invitations).where(
                invitations.c.company_id == company_id,
                invitations.c.status == InvitationStatus.PENDING.value,
                same_invitee,
            )
        ):
            if _invitation(row).is_open(now):
                raise Conflict(f"an invitation to them is pending already ({row.invitation_id})")
        invitation_id = secrets.token_urlsafe(16)
        values = {
            "invitation_id": invitation_id,
            "company_id": company_id,
            "member_id": member_id,
            "email": email,
            "invited_by": principal.member_id,
            "status": InvitationStatus.PENDING.value,
            "created_at": now,
            "expires_at": now + INVITATION_VALID_FOR,
            "answered_at": None,
        }
        await session.execute(invitations.insert().values(**values))
        await ctx.publisher.publish(
            session,
            CompanyInvitationSent(
                invitation_id=invitation_id,
                company_id=company_id,
                company_name=company.name,
                member_id=member_id,
                invited_by=principal.member_id,
                expires_at=now + INVITATION_VALID_FOR,
                sent_at=now,
            ),
            topic=TOPIC,
        )
        row = (await session.execute(select(invitations).where(invitations.c.invitation_id == invitation_id))).one()
    return _company_view(row, now)


@router.get("/companies/{company_id}/invitations", summary="The company's invitations and answers (admins, staff)")
async def company_invitations(
    company_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> list[InvitationOut]:
    await _company(session, company_id)
    await _ensure(session, principal, company_id, manage=True)
    rows = await session.execute(
        select(invitations)
        .where(invitations.c.company_id == company_id)
        .order_by(invitations.c.created_at.desc(), invitations.c.invitation_id)
        .limit(500)
    )
    now = ctx.clock.now()
    return [_company_view(row, now) for row in rows]


@router.delete(
    "/companies/{company_id}/invitations/{invitation_id}", summary="Withdraw a pending invitation (admins, staff)"
)
async def withdraw(
    company_id: IdPath, invitation_id: InvitationPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> InvitationOut:
    now = ctx.clock.now()
    async with session.begin():
        await _company(session, company_id)
        await _ensure(session, principal, company_id, manage=True)
        await serialize(session, f"invitation:{invitation_id}")
        row = (
            await session.execute(
                select(invitations).where(
                    invitations.c.invitation_id == invitation_id, invitations.c.company_id == company_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"no invitation {invitation_id} of {company_id}")
        if _invitation(row).status is not InvitationStatus.PENDING:
            raise Conflict(f"this invitation is {row.status} already")
        await session.execute(
            update(invitations)
            .where(invitations.c.invitation_id == invitation_id)
            .values(status=InvitationStatus.WITHDRAWN.value, answered_at=now)
        )
        row = (await session.execute(select(invitations).where(invitations.c.invitation_id == invitation_id))).one()
    return _company_view(row, now)


@router.get("/members/{member_id}/invitations", summary="A member's open invitations (self, staff)")
async def member_invitations(
    member_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> list[MemberInvitationOut]:
    ensure_self_or_staff(principal, member_id)
    now = ctx.clock.now()
    email = await _member_email(session, member_id)
    addressed = invitations.c.member_id == member_id
    if email is not None:
        addressed = or_(addressed, and_(invitations.c.member_id.is_(None), invitations.c.email == email))
    rows = await session.execute(
        select(invitations)
        .where(addressed, invitations.c.status == InvitationStatus.PENDING.value, invitations.c.expires_at > now)
        .order_by(invitations.c.created_at.desc(), invitations.c.invitation_id)
        .limit(500)
    )
    out = []
    for row in rows:
        company = await _company(session, row.company_id)
        out.append(
            MemberInvitationOut(
                invitation_id=row.invitation_id,
                company_id=row.company_id,
                company_name=company.name,
                invited_by=row.invited_by,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
        )
    return out


async def _answer(
    member_id: str, invitation_id: str, accept: bool, ctx: Context, session: AsyncSession, principal: CurrentPrincipal
) -> AnswerOut:
    if principal.member_id != member_id:
        raise Forbidden("only the invited member may answer an invitation")
    now = ctx.clock.now()
    async with session.begin():
        await serialize(session, f"invitation:{invitation_id}")
        row = (await session.execute(select(invitations).where(invitations.c.invitation_id == invitation_id))).first()
        email = await _member_email(session, member_id)
        if row is None or not _invitation(row).addressed_to(member_id, email):
            raise NotFound(f"no invitation {invitation_id} for you")
        try:
            _invitation(row).answer(now)
        except CompaniesError as exc:
            raise Conflict(str(exc)) from None
        employed = False
        if accept:
            employed = await _link(ctx, session, row.company_id, member_id, ctx.clock.today())
            if not employed:
                raise Conflict(f"you work for {row.company_id} already")
            await recompute(session, row.company_id, now, _emitter(ctx, session))
        status = InvitationStatus.ACCEPTED if accept else InvitationStatus.REFUSED
        await session.execute(
            update(invitations)
            .where(invitations.c.invitation_id == invitation_id)
            .values(status=status.value, answered_at=now, member_id=member_id)
        )
    return AnswerOut(
        invitation_id=invitation_id,
        company_id=row.company_id,
        member_id=member_id,
        status=status.value,
        employed=employed,
    )


@router.post(
    "/members/{member_id}/invitations/{invitation_id}/accept",
    summary="Accept an invitation: join the company (the invited member only)",
)
async def accept(
    member_id: IdPath, invitation_id: InvitationPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> AnswerOut:
    return await _answer(member_id, invitation_id, True, ctx, session, principal)


@router.post(
    "/members/{member_id}/invitations/{invitation_id}/refuse",
    summary="Refuse an invitation (the invited member only)",
)
async def refuse(
    member_id: IdPath, invitation_id: InvitationPath, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> AnswerOut:
    return await _answer(member_id, invitation_id, False, ctx, session, principal)
