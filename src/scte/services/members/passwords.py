"""Changing a password (the current one required) and resetting a forgotten one by mail.

- `POST /members/{member_id}/password` {current_password, new_password}: the member only (staff
  cannot, as they do not know it). Every session of the member is revoked, the one asking included,
  and the answer is a new session's tokens, so the member stays signed in where they changed it.
- `POST /password-resets` {email}: the same answer whether or not an account has this address (202),
  so it tells nobody who is a member. For an account, a single-use token valid 30 minutes is stored
  hashed and mailed through the notifications service as a link: `<public URL>/password-reset?token=...`.
  At most `MAX_OUTSTANDING_RESETS` links are outstanding at once, so the route cannot flood a mailbox.
- `POST /password-resets/confirm` {token, new_password}: sets the password, spends the token and
  every other outstanding one of the member, and revokes every session of the member.

A new password must satisfy the password policy (`domain.password_problems`). Passwords are taken
as typed: no trimming. Checking the current password counts as a sign-in for the limits (a wrong one
is a failed sign-in of the account and the address: scte.services.members.limits), and every hash
runs in the bounded pool (scte.services.members.hashing).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from scte.bus.storage import utcnow
from scte.contracts.members import PasswordResetRequested
from scte.kit.app import ApiError, Context, DbSession, ErrorOut
from scte.kit.auth import CurrentPrincipal, Forbidden
from scte.kit.forwarding import ClientAddress

from . import domain
from .api import abuse_limits, hashing_pool
from .db import members, password_resets
from .limits import LIMITED_RESPONSES
from .sessions import TOPIC, TokenOut, hash_secret, new_secret, revoke_all_sessions, start_session

__all__ = ["MAX_OUTSTANDING_RESETS", "RESET_TOKEN_TTL", "WrongPassword", "router"]

router = APIRouter(tags=["passwords"])

RESET_TOKEN_TTL = timedelta(minutes=30)
MAX_OUTSTANDING_RESETS = 3
RESET_ACCEPTED = (
    "If an account has this e-mail address, a link to choose a new password is on its way; it works once, "
    "within 30 minutes."
)


class WrongPassword(ApiError):
    """The current password given with a change is wrong (a failed sign-in, for the rate limits)."""

    status_code = 400
    code = "wrong_password"


class InvalidResetToken(ApiError):
    status_code = 400
    code = "invalid_reset_token"


Password = Annotated[str, Field(min_length=1, max_length=domain.PASSWORD_MAX_LENGTH)]


class _In(BaseModel):
    # passwords are taken as typed: no str_strip_whitespace here
    model_config = ConfigDict(extra="forbid")


class PasswordChangeIn(_In):
    current_password: Password
    new_password: Password


class ResetRequestIn(_In):
    email: Annotated[str, Field(min_length=1, max_length=254)]


class ResetConfirmIn(_In):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Password


class MessageOut(BaseModel):
    message: str


async def _policy(password: str, email: str, display_name: str) -> None:
    # zxcvbn is pure Python (up to ~70 ms): off the event loop
    problems = await asyncio.to_thread(domain.password_problems, password, email, display_name)
    if problems:
        raise domain.MembersError("new password: " + "; ".join(problems))


@router.post(
    "/members/{member_id}/password",
    summary="Change one's password (the member only; the current password required): every session is "
    "revoked and a new one begins",
    responses={
        400: {"model": ErrorOut, "description": "The current password is wrong, or the new one too weak"},
        **LIMITED_RESPONSES,
    },
)
async def change_password(
    member_id: str,
    body: PasswordChangeIn,
    principal: CurrentPrincipal,
    ctx: Context,
    session: DbSession,
    address: ClientAddress,
) -> TokenOut:
    if principal.member_id != member_id:
        raise Forbidden("only the member may change their password (staff: reset it by mail)")
    row = (
        await session.execute(
            select(members.c.password_hash, members.c.email, members.c.display_name).where(members.c.id == member_id)
        )
    ).first()
    await session.rollback()
    if row is None:
        raise Forbidden("only the member may change their password")
    limits = abuse_limits(ctx)
    await limits.before_sign_in(row.email, address)
    valid, _rehash = await hashing_pool(ctx).verify(row.password_hash, body.current_password)
    if not valid:
        await limits.sign_in_failed(address)
        raise WrongPassword("the current password is wrong")
    await limits.sign_in_succeeded(row.email)
    await _policy(body.new_password, row.email, row.display_name)
    if body.new_password == body.current_password:
        raise domain.MembersError("new password: choose one different from the current one")
    new_hash = await hashing_pool(ctx).hash(body.new_password)
    now = utcnow()
    async with session.begin():
        await session.execute(update(members).where(members.c.id == member_id).values(password_hash=new_hash))
        await session.execute(
            update(password_resets)
            .where(password_resets.c.member_id == member_id, password_resets.c.used_at.is_(None))
            .values(used_at=now)
        )
        await revoke_all_sessions(ctx.publish_in(session), session, member_id, "password_changed")
    return await start_session(ctx, session, member_id)


@router.post(
    "/password-resets",
    status_code=202,
    summary="Ask for a password reset link by mail (no token needed; the same answer for any address)",
)
async def request_reset(body: ResetRequestIn, ctx: Context, session: DbSession) -> MessageOut:
    try:
        email = domain.normalize_email(body.email)
    except domain.MembersError:
        return MessageOut(message=RESET_ACCEPTED)
    now = utcnow()
    async with session.begin():
        member_id = await session.scalar(select(members.c.id).where(members.c.email == email))
        if member_id is None:
            return MessageOut(message=RESET_ACCEPTED)
        outstanding = await session.scalar(
            select(func.count())
            .select_from(password_resets)
            .where(
                password_resets.c.member_id == member_id,
                password_resets.c.used_at.is_(None),
                password_resets.c.expires_at > now,
            )
        )
        if int(outstanding or 0) >= MAX_OUTSTANDING_RESETS:
            return MessageOut(message=RESET_ACCEPTED)  # the links already sent still work
        token = new_secret()
        expires_at = now + RESET_TOKEN_TTL
        await session.execute(
            password_resets.insert().values(
                token_hash=hash_secret(token), member_id=member_id, created_at=now, expires_at=expires_at
            )
        )
        link = f"{ctx.settings.public_url.rstrip('/')}/password-reset?token={quote(token)}"
        await ctx.publish_in(session)(
            PasswordResetRequested(member_id=member_id, reset_url=link, expires_at=expires_at, requested_at=now),
            topic=TOPIC,
        )
    return MessageOut(message=RESET_ACCEPTED)


@router.post(
    "/password-resets/confirm",
    summary="Choose a new password with a mailed reset token (no token needed): every session is revoked",
    responses={
        400: {"model": ErrorOut, "description": "The token is unknown, used or expired, or the password weak"},
        503: LIMITED_RESPONSES[503],
    },
)
async def confirm_reset(body: ResetConfirmIn, ctx: Context, session: DbSession) -> MessageOut:
    token_hash = hash_secret(body.token)
    found = (
        await session.execute(
            select(
                password_resets.c.member_id,
                password_resets.c.used_at,
                password_resets.c.expires_at,
                members.c.email,
                members.c.display_name,
            )
            .join(members, members.c.id == password_resets.c.member_id)
            .where(password_resets.c.token_hash == token_hash)
        )
    ).first()
    await session.rollback()
    _check_reset(found)
    assert found is not None
    await _policy(body.new_password, found.email, found.display_name)
    new_hash = await hashing_pool(ctx).hash(body.new_password)
    now = utcnow()
    async with session.begin():
        spent = await session.execute(
            update(password_resets)
            .where(
                password_resets.c.token_hash == token_hash,
                password_resets.c.used_at.is_(None),
                password_resets.c.expires_at > now,
            )
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidResetToken("this reset link was used already: ask for a new one")
        await session.execute(
            update(password_resets)
            .where(password_resets.c.member_id == found.member_id, password_resets.c.used_at.is_(None))
            .values(used_at=now)
        )
        await session.execute(update(members).where(members.c.id == found.member_id).values(password_hash=new_hash))
        await revoke_all_sessions(ctx.publish_in(session), session, found.member_id, "password_reset")
    return MessageOut(message="Your password is changed; sign in with it. Every other session was signed out.")


def _check_reset(found: object) -> None:
    if found is None:
        raise InvalidResetToken("this reset link is not valid: ask for a new one")
    if getattr(found, "used_at", None) is not None:
        raise InvalidResetToken("this reset link was used already: ask for a new one")
    if found.expires_at <= utcnow():  # type: ignore[attr-defined]
        raise InvalidResetToken("this reset link has expired (it works for 30 minutes): ask for a new one")
