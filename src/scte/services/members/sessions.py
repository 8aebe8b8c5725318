"""Sign-in sessions: short-lived access tokens, rotating refresh tokens, sign-out and revocation.

A sign-in starts a session. Its access tokens (JWTs, at most 15 minutes) carry the session id and the
member's revocation epoch; its refresh token is opaque, stored hashed, and single use: each refresh
marks it used and hands out a new one with a new access token, so a stolen copy is worth one use.
Presenting a refresh token that was already used means two parties hold it; the whole session is
revoked then (the thief's and the owner's tokens alike), and the owner signs in again.

Revoking tells every service at once (`member.sessions_revoked.v1`, kept by `scte.kit.revocation`):
- one session: signing out, a reused refresh token;
- every session of a member (the epoch grows by one): a password change or reset, a company role
  taken away or an employment ended (the tokens name the company the member administers).

Auth times are the wall clock, never the platform's (test) clock: every service verifies tokens on
the wall clock, and a moved platform clock must not end or prolong sessions.

Routes (no access token needed: the refresh token is the credential):
- `POST /sessions/refresh` {refresh_token}: a new access token and a new refresh token;
- `POST /sessions/sign-out` {refresh_token}: the session ends (204, whether or not it was known,
  as in RFC 7009, so the answer tells nothing of the token).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.storage import utcnow
from scte.contracts.members import MemberSessionsRevoked, RevocationReason
from scte.kit.app import Context, DbSession, ErrorOut, ServiceContext, ServiceUnavailable
from scte.kit.auth import AuthError
from scte.kit.db import serialize
from scte.kit.revocation import MEMBERS_TOPIC, current_epoch, record_revocation

from .db import member_sessions, members, password_resets, refresh_tokens

__all__ = [
    "REFRESH_TOKEN_BYTES",
    "RefreshIn",
    "TokenOut",
    "hash_secret",
    "new_secret",
    "prune_sessions",
    "refresh_session",
    "revoke_all_sessions",
    "revoke_session",
    "router",
    "session_sweep",
    "start_session",
]

log = logging.getLogger(__name__)

router = APIRouter(tags=["sessions"])

TOPIC = MEMBERS_TOPIC
Publish = Callable[..., Awaitable[Any]]
"""`publish(event, topic=...)`: a route's (bound to its session) or a handler's."""

REFRESH_TOKEN_BYTES = 32
"""256 random bits: guessing one is hopeless, so the stored SHA-256 needs no salt or slow hash."""


def new_secret() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_key(member_id: str) -> str:
    # the key record_revocation serializes on: a sign-in reads the epoch a revocation is raising
    return f"auth-revocations:{member_id}"


# -- models ---------------------------------------------------------------------------------------------


class TokenOut(BaseModel):
    """What a sign-in, a refresh or a password change answers: the session's new pair of tokens."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    """Seconds the access token lives (at most 900)."""
    refresh_token: str
    """Opaque, single use: send it to `POST /sessions/refresh` for the next pair."""
    refresh_expires_in: int
    """Seconds the refresh token may wait before its use (the session may end sooner)."""
    session_id: str
    member_id: str
    roles: list[str]
    company_id: str | None


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


# -- the life of a session ------------------------------------------------------------------------------


async def _issue(
    ctx: ServiceContext, session: AsyncSession, member: Any, session_id: str, epoch: int, now: datetime
) -> TokenOut:
    """A new refresh token for the session (in the caller's transaction) and an access token."""
    if ctx.issuer is None:
        raise ServiceUnavailable("sign-in is not configured (no signing key)")
    settings = ctx.settings
    refresh = new_secret()
    ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)
    await session.execute(
        refresh_tokens.insert().values(
            token_hash=hash_secret(refresh), session_id=session_id, issued_at=now, expires_at=now + ttl
        )
    )
    roles = list(member.roles or ["member"])
    access = ctx.issuer.issue(member.id, roles, member.company_id, session_id=session_id, epoch=epoch, now=now)
    return TokenOut(
        access_token=access,
        expires_in=int(ctx.issuer.ttl.total_seconds()),
        refresh_token=refresh,
        refresh_expires_in=int(ttl.total_seconds()),
        session_id=session_id,
        member_id=member.id,
        roles=roles,
        company_id=member.company_id,
    )


async def start_session(ctx: ServiceContext, session: AsyncSession, member_id: str) -> TokenOut:
    """A new session for a member whose password was just checked (opens its own transaction)."""
    now = utcnow()
    async with session.begin():
        await serialize(session, _lock_key(member_id))
        member = (
            await session.execute(
                select(members.c.id, members.c.roles, members.c.company_id).where(members.c.id == member_id)
            )
        ).first()
        if member is None:
            raise AuthError("wrong email or password")
        epoch = await current_epoch(session, member_id)
        session_id = uuid.uuid4().hex
        await session.execute(
            member_sessions.insert().values(
                id=session_id,
                member_id=member_id,
                epoch=epoch,
                created_at=now,
                expires_at=now + timedelta(seconds=ctx.settings.session_max_age_seconds),
            )
        )
        return await _issue(ctx, session, member, session_id, epoch, now)


async def refresh_session(ctx: ServiceContext, session: AsyncSession, refresh_token: str) -> TokenOut:
    """The next pair of tokens for a refresh token; `AuthError` (401) when it is unknown, expired,
    already used (the session is revoked then) or its session has ended."""
    now = utcnow()
    token_hash = hash_secret(refresh_token)
    refusal: str | None = None
    async with session.begin():
        query = (
            select(
                refresh_tokens.c.expires_at.label("token_expires_at"),
                refresh_tokens.c.used_at,
                member_sessions.c.id.label("session_id"),
                member_sessions.c.member_id,
                member_sessions.c.epoch,
                member_sessions.c.expires_at,
                member_sessions.c.revoked_at,
            )
            .join(member_sessions, member_sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == token_hash)
        )
        found = (await session.execute(query)).first()
        if found is None:
            raise AuthError("unknown refresh token: sign in again")
        await serialize(session, _lock_key(found.member_id))
        if session.get_bind().dialect.name == "postgresql":  # read again under the lock
            found = (await session.execute(query.with_for_update(of=member_sessions))).first()
            assert found is not None
        if found.revoked_at is not None:
            refusal = "this session was signed out or revoked: sign in again"
        elif found.used_at is not None:
            await _revoke_one(
                ctx.publish_in(session), session, found.member_id, found.session_id, "refresh_token_reused", now
            )
            refusal = "this refresh token was used already: the session is revoked, sign in again"
        elif found.expires_at <= now or found.token_expires_at <= now:
            refusal = "this session has expired: sign in again"
        elif await current_epoch(session, found.member_id) > found.epoch:
            refusal = "this session was revoked: sign in again"
        else:
            claimed = await session.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                await _revoke_one(
                    ctx.publish_in(session), session, found.member_id, found.session_id, "refresh_token_reused", now
                )
                refusal = "this refresh token was used already: the session is revoked, sign in again"
            else:
                member = (
                    await session.execute(
                        select(members.c.id, members.c.roles, members.c.company_id).where(
                            members.c.id == found.member_id
                        )
                    )
                ).first()
                if member is None:
                    refusal = "this account no longer exists"
                else:
                    await session.execute(
                        update(member_sessions)
                        .where(member_sessions.c.id == found.session_id)
                        .values(last_refreshed_at=now)
                    )
                    return await _issue(ctx, session, member, found.session_id, found.epoch, now)
    # the revocation above is committed; only then is the caller refused
    raise AuthError(refusal)


async def _revoke_one(
    publish: Publish, session: AsyncSession, member_id: str, session_id: str, reason: RevocationReason, now: datetime
) -> bool:
    """Revoke one session in the caller's transaction; False when it was revoked already."""
    changed = await session.execute(
        update(member_sessions)
        .where(member_sessions.c.id == session_id, member_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        return False
    epoch = await current_epoch(session, member_id)
    await record_revocation(session, member_id, session_id, epoch, now)
    await publish(
        MemberSessionsRevoked(member_id=member_id, session_id=session_id, epoch=epoch, reason=reason, revoked_at=now),
        topic=TOPIC,
    )
    return True


async def revoke_session(
    publish: Publish, session: AsyncSession, member_id: str, session_id: str, reason: RevocationReason
) -> bool:
    """End one session now, everywhere (in the caller's transaction)."""
    await serialize(session, _lock_key(member_id))
    return await _revoke_one(publish, session, member_id, session_id, reason, utcnow())


async def revoke_all_sessions(publish: Publish, session: AsyncSession, member_id: str, reason: RevocationReason) -> int:
    """End every session of the member now, everywhere (in the caller's transaction): the member's
    epoch grows by one, so every token issued before is refused. Returns the new epoch."""
    now = utcnow()
    await serialize(session, _lock_key(member_id))
    epoch = await current_epoch(session, member_id) + 1
    await record_revocation(session, member_id, None, epoch, now)
    await session.execute(
        update(member_sessions)
        .where(member_sessions.c.member_id == member_id, member_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    await publish(
        MemberSessionsRevoked(member_id=member_id, session_id=None, epoch=epoch, reason=reason, revoked_at=now),
        topic=TOPIC,
    )
    return epoch


# -- clearing away -------------------------------------------------------------------------------------

ENDED_RETENTION = timedelta(days=1)
"""Ended sessions (and spent reset tokens) are kept a day: a reused refresh token is told the session
was revoked rather than that it is unknown, and the audit trail shows recent sign-outs."""
SWEEP_INTERVAL_SECONDS = 3600.0


async def prune_sessions(session: AsyncSession, now: datetime) -> int:
    """Delete sessions ended more than ENDED_RETENTION ago with their refresh tokens, and old reset
    tokens (in the caller's transaction); the number of sessions deleted."""
    cutoff = now - ENDED_RETENTION
    ended = select(member_sessions.c.id).where(
        or_(member_sessions.c.expires_at < cutoff, member_sessions.c.revoked_at < cutoff)
    )
    await session.execute(delete(refresh_tokens).where(refresh_tokens.c.session_id.in_(ended)))
    gone = await session.execute(delete(member_sessions).where(member_sessions.c.id.in_(ended)))
    await session.execute(delete(password_resets).where(password_resets.c.expires_at < cutoff))
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]


async def session_sweep(context: ServiceContext) -> None:
    """Background task of the members service: prune ended sessions every hour."""
    while True:
        async with context.sessionmaker() as session, session.begin():
            pruned = await prune_sessions(session, utcnow())
        if pruned:
            log.info("session sweep: %d ended session(s) deleted", pruned)
        await asyncio.sleep(float(context.extras.get("session_sweep_interval_seconds", SWEEP_INTERVAL_SECONDS)))


# -- routes ---------------------------------------------------------------------------------------------


@router.post(
    "/sessions/refresh",
    summary="Renew a session: a new access token and a new refresh token (no access token needed)",
    responses={
        401: {
            "model": ErrorOut,
            "description": "Unknown, expired or reused refresh token (a reused one revokes the session)",
        }
    },
)
async def refresh(body: RefreshIn, ctx: Context, session: DbSession) -> TokenOut:
    return await refresh_session(ctx, session, body.refresh_token)


@router.post(
    "/sessions/sign-out",
    status_code=204,
    summary="Sign out: end the session of this refresh token everywhere (no access token needed)",
    response_class=Response,
)
async def sign_out(body: RefreshIn, ctx: Context, session: DbSession) -> Response:
    async with session.begin():
        found = (
            await session.execute(
                select(member_sessions.c.id, member_sessions.c.member_id)
                .join(refresh_tokens, refresh_tokens.c.session_id == member_sessions.c.id)
                .where(refresh_tokens.c.token_hash == hash_secret(body.refresh_token))
            )
        ).first()
        if found is not None:
            await revoke_session(ctx.publish_in(session), session, found.member_id, found.id, "signed_out")
    return Response(status_code=204)
