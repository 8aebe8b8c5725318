"""The members REST API: register, sign in, profiles, membership.

Registration and sign-in are the only routes without a token. A member sees and changes only their
own record; staff see and change anyone's.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scte.contracts.members import MemberProfileUpdated, MemberRegistered
from scte.kit.app import Conflict, Context, DbSession, NotFound, ServiceUnavailable
from scte.kit.auth import AuthError, CurrentPrincipal, Principal, ensure_self_or_staff, require_role
from scte.kit.bounds import INT_MAX, StrictFlag
from scte.kit.forwarding import ClientAddress

from . import domain
from .db import members
from .handlers import TOPIC, load_membership
from .hashing import HashingPool, hash_password
from .limits import LIMITED_RESPONSES, AbuseLimits
from .sessions import TokenOut, start_session

__all__ = ["hash_password", "router"]

router = APIRouter(tags=["members"])


def hashing_pool(ctx: Context) -> HashingPool:
    pool = ctx.extras.get("hashing")
    if not isinstance(pool, HashingPool):  # a runtime built without one (tests of other parts)
        pool = ctx.extras["hashing"] = HashingPool()
    return pool


def abuse_limits(ctx: Context) -> AbuseLimits:
    limits = ctx.extras.get("abuse_limits")
    if not isinstance(limits, AbuseLimits):
        limits = ctx.extras["abuse_limits"] = AbuseLimits()
    return limits


# -- models ---------------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Password = Annotated[
    str,
    # taken exactly as typed: a trimmed password would accept " secret" for "secret " (no silent trimming)
    StringConstraints(strip_whitespace=False),
    Field(min_length=1, max_length=domain.PASSWORD_MAX_LENGTH),
]


class RegisterIn(_In):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Password
    display_name: Annotated[str, Field(min_length=1, max_length=domain.DISPLAY_NAME_MAX)]
    city: Annotated[str | None, Field(max_length=100)] = None
    country: Annotated[str | None, Field(max_length=2)] = None
    listed_in_directory: StrictFlag = False


class SignInIn(_In):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Password


class ProfilePatch(_In):
    display_name: Annotated[str | None, Field(min_length=1, max_length=domain.DISPLAY_NAME_MAX)] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    country: Annotated[str | None, Field(max_length=2)] = None
    listed_in_directory: StrictFlag | SkipJsonSchema[None] = None
    """Not nullable: left out keeps the current choice, null is refused (422) like any non-boolean
    (SkipJsonSchema keeps None, the "left out" default, out of the documented type)."""

    @field_validator("listed_in_directory", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must be true or false, not null (leave it out to keep the current choice)")
        return value


class MembershipOut(BaseModel):
    member_since: date | None
    term_start: date | None
    term_end: date | None
    lapses_on: date | None
    status: domain.MemberStatus


class MemberOut(BaseModel):
    id: str
    email: str
    display_name: str
    city: str | None
    country: str | None
    listed_in_directory: bool
    roles: list[str]
    company_id: str | None
    status: str
    designations: list[str]
    registered_at: datetime
    updated_at: datetime


class MemberPage(BaseModel):
    items: list[MemberOut]
    total: int


# -- helpers --------------------------------------------------------------------------------------------


async def _member(session: AsyncSession, member_id: str) -> MemberOut:
    row = (await session.execute(select(members).where(members.c.id == member_id))).mappings().first()
    if row is None:
        raise NotFound(f"no member {member_id}")
    return _out(row)


def _out(row: object) -> MemberOut:
    data = dict(row)  # type: ignore[call-overload]
    data.pop("password_hash", None)
    data["roles"] = list(data["roles"] or [])
    data["designations"] = list(data["designations"] or [])
    return MemberOut.model_validate(data)


# -- routes ---------------------------------------------------------------------------------------------


@router.post("/members", status_code=201, summary="Register an account (no token needed)", responses=LIMITED_RESPONSES)
async def register(body: RegisterIn, ctx: Context, session: DbSession, address: ClientAddress) -> MemberOut:
    await abuse_limits(ctx).before_registration(address)
    member_id = uuid.uuid4().hex
    profile = domain.validate_profile(
        domain.Profile(member_id, body.email, body.display_name, body.city, body.country, body.listed_in_directory)
    )
    problems = await asyncio.to_thread(domain.password_problems, body.password, profile.email, profile.display_name)
    if problems:
        raise domain.MembersError("password: " + "; ".join(problems))
    password_hash = await hashing_pool(ctx).hash(body.password)
    now = ctx.clock.now()
    try:
        async with session.begin():
            taken = await session.scalar(select(members.c.id).where(members.c.email == profile.email))
            if taken is not None:
                raise Conflict("an account with this email exists; sign in instead", code="email_taken")
            await session.execute(
                members.insert().values(
                    id=member_id,
                    email=profile.email,
                    password_hash=password_hash,
                    display_name=profile.display_name,
                    city=profile.city,
                    country=profile.country,
                    listed_in_directory=profile.listed_in_directory,
                    roles=["member"],
                    company_id=None,
                    status=domain.MemberStatus.PROSPECT.value,
                    designations=[],
                    registered_at=now,
                    updated_at=now,
                )
            )
            publish = ctx.publish_in(session)
            await publish(
                MemberRegistered(
                    member_id=member_id, email=profile.email, display_name=profile.display_name, registered_at=now
                ),
                topic=TOPIC,
            )
            if profile.listed_in_directory or profile.city or profile.country:
                await publish(_profile_event(member_id, profile, now), topic=TOPIC)
    except IntegrityError:
        raise Conflict("an account with this email exists; sign in instead", code="email_taken") from None
    return await _member(session, member_id)


def _profile_event(member_id: str, profile: domain.Profile, now: datetime) -> MemberProfileUpdated:
    return MemberProfileUpdated(
        member_id=member_id,
        display_name=profile.display_name,
        city=profile.city,
        country=profile.country,
        listed_in_directory=profile.listed_in_directory,
        updated_at=now,
    )


@router.post(
    "/sessions",
    summary="Sign in: a new session's access token (for every service) and refresh token (no token needed)",
    responses=LIMITED_RESPONSES,
)
async def sign_in(body: SignInIn, ctx: Context, session: DbSession, address: ClientAddress) -> TokenOut:
    if ctx.issuer is None:
        raise ServiceUnavailable("sign-in is not configured (no signing key)")
    try:
        email: str | None = domain.normalize_email(body.email)
    except domain.MembersError:
        email = None
    limits = abuse_limits(ctx)
    await limits.before_sign_in(email, address)
    row = (await session.execute(select(members).where(members.c.email == (email or "")))).mappings().first()
    await session.rollback()
    valid, needs_rehash = await hashing_pool(ctx).verify(
        row["password_hash"] if row is not None else None, body.password
    )
    if row is None or not valid:
        await limits.sign_in_failed(address)
        raise AuthError("wrong email or password")
    assert email is not None
    await limits.sign_in_succeeded(email)
    if needs_rehash:
        new_hash = await hashing_pool(ctx).hash(body.password)
        async with session.begin():
            await session.execute(update(members).where(members.c.id == row["id"]).values(password_hash=new_hash))
    # the session's tokens; lifetimes are real time (scte.services.members.sessions)
    return await start_session(ctx, session, row["id"])


@router.get("/me", summary="The signed-in member's own record")
async def read_me(principal: CurrentPrincipal, session: DbSession) -> MemberOut:
    return await _member(session, principal.member_id)


@router.get("/members", summary="List members (staff)")
async def list_members(
    _staff: Annotated[Principal, Depends(require_role("staff"))],
    session: DbSession,
    status: Annotated[domain.MemberStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT_MAX)] = 0,
) -> MemberPage:
    query = select(members)
    count = select(func.count()).select_from(members)
    if status is not None:
        query = query.where(members.c.status == status.value)
        count = count.where(members.c.status == status.value)
    rows = (await session.execute(query.order_by(members.c.registered_at).limit(limit).offset(offset))).mappings()
    items = [_out(row) for row in rows]
    return MemberPage(items=items, total=int(await session.scalar(count) or 0))


@router.get("/members/{member_id}", summary="A member's record (self or staff)")
async def read_member(member_id: str, principal: CurrentPrincipal, session: DbSession) -> MemberOut:
    ensure_self_or_staff(principal, member_id)
    return await _member(session, member_id)


@router.patch("/members/{member_id}", summary="Change a member's profile (self or staff)")
async def update_member(
    member_id: str, body: ProfilePatch, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> MemberOut:
    ensure_self_or_staff(principal, member_id)
    given = body.model_dump(exclude_unset=True)
    if "display_name" in given and given["display_name"] is None:
        raise domain.MembersError("a display name is required")
    now = ctx.clock.now()
    async with session.begin():
        row = (await session.execute(select(members).where(members.c.id == member_id))).mappings().first()
        if row is None:
            raise NotFound(f"no member {member_id}")
        current = domain.Profile(
            member_id, row["email"], row["display_name"], row["city"], row["country"], row["listed_in_directory"]
        )
        merged = domain.validate_profile(
            domain.Profile(
                member_id,
                current.email,
                given.get("display_name", current.display_name),
                given.get("city", current.city),
                given.get("country", current.country),
                given.get("listed_in_directory", current.listed_in_directory),
            )
        )
        if merged != current:
            await session.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(
                    display_name=merged.display_name,
                    city=merged.city,
                    country=merged.country,
                    listed_in_directory=merged.listed_in_directory,
                    updated_at=now,
                )
            )
            await ctx.publish_in(session)(_profile_event(member_id, merged, now), topic=TOPIC)
    return await _member(session, member_id)


@router.get("/members/{member_id}/membership", summary="Membership terms and standing (self or staff)")
async def read_membership(
    member_id: str, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> MembershipOut:
    ensure_self_or_staff(principal, member_id)
    exists = await session.scalar(select(members.c.id).where(members.c.id == member_id))
    if exists is None:
        raise NotFound(f"no member {member_id}")
    membership = await load_membership(session, member_id)
    status = domain.member_status(membership, ctx.clock.today())
    if membership is None:
        return MembershipOut(member_since=None, term_start=None, term_end=None, lapses_on=None, status=status)
    return MembershipOut(
        member_since=membership.member_since,
        term_start=membership.term_start,
        term_end=membership.term_end,
        lapses_on=domain.lapses_on(membership),
        status=status,
    )


class RolesIn(_In):
    roles: Annotated[list[Literal["member", "staff"]], Field(max_length=2)]
    """The site roles staff grant; `company_admin` is granted by a company (company.roles_changed) and kept."""


@router.put("/members/{member_id}/roles", summary="Set a member's site roles (staff)")
async def set_roles(
    member_id: str,
    body: RolesIn,
    principal: Annotated[Principal, Depends(require_role("staff"))],
    ctx: Context,
    session: DbSession,
) -> MemberOut:
    wanted = set(body.roles) | {"member"}
    if member_id == principal.member_id and "staff" not in wanted:
        raise domain.MembersError("staff cannot take away their own staff role (ask another staff member)")
    async with session.begin():
        row = (await session.execute(select(members.c.roles).where(members.c.id == member_id))).first()
        if row is None:
            raise NotFound(f"no member {member_id}")
        kept = {r for r in (row.roles or []) if r == "company_admin"}
        await session.execute(
            update(members)
            .where(members.c.id == member_id)
            .values(roles=sorted(wanted | kept), updated_at=ctx.clock.now())
        )
    return await _member(session, member_id)
