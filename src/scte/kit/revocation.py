"""Revoked sign-in sessions, kept by every service so that a revoked access token is refused on its
next request instead of when it expires.

The members service revokes sessions (sign-out, a reused refresh token, a password change or reset,
a company role taken away) and announces it as `member.sessions_revoked.v1`. Every other service
subscribes to that event (`with_revocations(QUEUE)`), and its runtime stores it in the small
`auth_revocations` table of its own database; the members service writes the same table directly,
in the transaction that revokes. `scte.kit.auth.require_principal` looks a token up there on every
request.

One table holds both kinds of revocation:
- a row `(member, session)`: that one session is revoked (its access tokens carry `sid`);
- a row `(member, "")` with an epoch: every token of the member whose `rev` claim is below it is
  revoked. The members service stamps new tokens with the member's current epoch, so sessions
  begun after a revocation are not caught by it.

Rows of single sessions are useless once the session's last access token has expired (at most
`MAX_ACCESS_TOKEN_TTL` after the revocation), so they are pruned after `SESSION_ROW_RETENTION`; the
epoch rows stay (one per member at most).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from scte.bus.storage import UtcDateTime
from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.members import MemberSessionsRevoked
from scte.kit.db import serialize

if TYPE_CHECKING:
    from scte.kit.auth import Principal

__all__ = [
    "ALL_SESSIONS",
    "MEMBERS_TOPIC",
    "SESSION_ROW_RETENTION",
    "RevocationCheck",
    "auth_revocations",
    "current_epoch",
    "include_revocations",
    "is_revoked",
    "on_sessions_revoked",
    "receives_revocations",
    "record_revocation",
    "store_revocation",
    "with_revocations",
]

MEMBERS_TOPIC = "members"
ALL_SESSIONS = ""
"""The `session_id` of a member's epoch row (every session below the epoch)."""
SESSION_ROW_RETENTION = timedelta(hours=1)
"""How long a single session's row is kept: longer than an access token lives (15 minutes, plus the
verifiers' clock leeway), so its tokens are all expired when the row goes."""

metadata = MetaData()

auth_revocations = Table(
    "auth_revocations",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("session_id", String(128), primary_key=True, comment="'' = every session of the member below epoch"),
    Column("epoch", Integer, nullable=False, comment="tokens whose rev claim is below this are revoked"),
    Column("revoked_at", UtcDateTime, nullable=False),
)


def include_revocations(target: MetaData) -> None:
    """Add `auth_revocations` to a service's own `MetaData` (its Alembic migrations create it)."""
    if "auth_revocations" not in target.tables:
        auth_revocations.to_metadata(target)


# -- writing ---------------------------------------------------------------------------------------------


async def current_epoch(session: AsyncSession, member_id: str) -> int:
    """The member's revocation epoch: tokens issued now carry it (0 until the first revocation)."""
    value = await session.scalar(
        select(auth_revocations.c.epoch).where(
            auth_revocations.c.member_id == member_id, auth_revocations.c.session_id == ALL_SESSIONS
        )
    )
    return int(value or 0)


async def record_revocation(
    session: AsyncSession, member_id: str, session_id: str | None, epoch: int, revoked_at: datetime
) -> None:
    """Store a revocation in the caller's transaction; idempotent, and epochs only ever grow, so
    events applied twice or out of order leave the same table."""
    c = auth_revocations.c
    await serialize(session, f"auth-revocations:{member_id}")
    if session_id is not None:
        exists = await session.scalar(select(c.epoch).where(c.member_id == member_id, c.session_id == session_id))
        if exists is None:
            await session.execute(
                auth_revocations.insert().values(
                    member_id=member_id, session_id=session_id, epoch=epoch, revoked_at=revoked_at
                )
            )
    else:
        known = await session.scalar(select(c.epoch).where(c.member_id == member_id, c.session_id == ALL_SESSIONS))
        if known is None:
            await session.execute(
                auth_revocations.insert().values(
                    member_id=member_id, session_id=ALL_SESSIONS, epoch=epoch, revoked_at=revoked_at
                )
            )
        elif known < epoch:
            await session.execute(
                update(auth_revocations)
                .where(c.member_id == member_id, c.session_id == ALL_SESSIONS)
                .values(epoch=epoch, revoked_at=revoked_at)
            )
    await _prune(session, revoked_at)


PRUNE_EVERY_SECONDS = 600.0
_last_prune = [-PRUNE_EVERY_SECONDS]


async def _prune(session: AsyncSession, now: datetime) -> None:
    """Delete single-session rows past SESSION_ROW_RETENTION, at most every PRUNE_EVERY_SECONDS per
    process: the delete scans the table (no index on the time), which grows with the epoch rows."""
    clock = time.monotonic()
    if clock - _last_prune[0] < PRUNE_EVERY_SECONDS:
        return
    _last_prune[0] = clock
    c = auth_revocations.c
    await session.execute(
        delete(auth_revocations).where(c.session_id != ALL_SESSIONS, c.revoked_at < now - SESSION_ROW_RETENTION)
    )


async def on_sessions_revoked(event: MemberSessionsRevoked, session: AsyncSession) -> None:
    """The handler every service runs for `member.sessions_revoked.v1` (added by its runtime)."""
    await record_revocation(session, event.member_id, event.session_id, event.epoch, event.revoked_at)


async def store_revocation(event: MemberSessionsRevoked, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The same handler for a consumer without the bus inbox (it has no `session` to give): its own
    transaction; storing a revocation twice changes nothing."""
    async with sessionmaker() as session, session.begin():
        await on_sessions_revoked(event, session)


# -- checking --------------------------------------------------------------------------------------------


def _revoked_queries() -> tuple[Select[Any], Select[Any]]:
    c = auth_revocations.c
    below_epoch = and_(c.session_id == ALL_SESSIONS, c.epoch > bindparam("epoch"))
    of_member = c.member_id == bindparam("member_id")
    with_session = or_(below_epoch, c.session_id == bindparam("session_id"))
    return (
        select(literal(1)).where(of_member, with_session).limit(1),
        select(literal(1)).where(of_member, below_epoch).limit(1),
    )


# Built once with bind parameters: building the statement per request cost three times its execution.
_REVOKED_SESSION, _REVOKED_EPOCH = _revoked_queries()


async def is_revoked(connection: AsyncSession | AsyncConnection, principal: Principal) -> bool:
    """Whether the principal's token belongs to a revoked session (one primary-key lookup)."""
    params: dict[str, Any] = {"member_id": principal.member_id, "epoch": principal.epoch}
    if principal.session_id:
        params["session_id"] = principal.session_id
        return await connection.scalar(_REVOKED_SESSION, params) is not None
    return await connection.scalar(_REVOKED_EPOCH, params) is not None


class RevocationCheck:
    """`await check(principal)`: True when the token is revoked; what a runtime puts on its app.

    A plain connection rather than an ORM session: this runs on every request, and the session's
    machinery costs twice the lookup itself (bench/revocation.py, docs/benchmarks.md)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, principal: Principal) -> bool:
        async with self._engine.connect() as connection:
            return await is_revoked(connection, principal)


# -- the subscription ------------------------------------------------------------------------------------


def with_revocations(queue: QueueSpec) -> QueueSpec:
    """`queue` also subscribed to `member.sessions_revoked.v1` (merged into its subscription to the
    members topic, as a topic delivers to a queue through one subscription)."""
    event_type = MemberSessionsRevoked.event_type
    subscriptions = list(queue.subscriptions)
    for index, subscription in enumerate(subscriptions):
        if subscription.topic != MEMBERS_TOPIC:
            continue
        if subscription.accepts(event_type) is True:
            return queue
        if not subscription.event_types:
            raise ValueError(f"queue {queue.name}: its members subscription filters on attributes; add {event_type}")
        subscriptions[index] = replace(subscription, event_types=(*subscription.event_types, event_type))
        return replace(queue, subscriptions=tuple(subscriptions))
    subscriptions.append(Subscription(MEMBERS_TOPIC, event_types=(event_type,)))
    return replace(queue, subscriptions=tuple(subscriptions))


def receives_revocations(queue: QueueSpec | None) -> bool:
    """Whether a queue's subscriptions bring it `member.sessions_revoked.v1`."""
    if queue is None:
        return False
    return any(
        s.topic == MEMBERS_TOPIC and s.accepts(MemberSessionsRevoked.event_type) is not False
        for s in queue.subscriptions
    )
