"""The members service's event handlers, and the standing refresh shared with its API and sweep.

- order.paid with dues lines: the membership starts or is renewed (domain.pay_dues);
- certification.*: the certifications read model, hence the designations;
- company.roles_changed, company.employment_changed: the company_admin role carried in the member's
  next token; when it is taken away, every session of the member is revoked at once (sessions.py).

Whenever a member's standing or designations change, member.status_changed is published.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.contracts import Event
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationEmeritusGranted,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
)
from scte.contracts.commerce import OrderPaid
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.contracts.members import MembershipLapsed, MembershipRenewed, MembershipStarted, MemberStatusChanged
from scte.kit.clock import Clock

from . import domain
from .db import member_certifications, members, memberships
from .sessions import revoke_all_sessions

__all__ = ["HANDLERS", "TOPIC", "Publish", "load_membership", "refresh_standing"]

log = logging.getLogger(__name__)

TOPIC = "members"
Publish = Callable[..., Awaitable[Any]]
"""`publish(event, topic=...)`: the consumer's, or a route's bound to its session."""


async def load_membership(session: AsyncSession, member_id: str) -> domain.Membership | None:
    row = (await session.execute(select(memberships).where(memberships.c.member_id == member_id))).mappings().first()
    if row is None:
        return None
    return domain.Membership(member_id, row["member_since"], row["term_start"], row["term_end"])


async def held_certifications(session: AsyncSession, member_id: str) -> list[domain.HeldCertification]:
    rows = (
        await session.execute(
            select(
                member_certifications.c.program, member_certifications.c.emeritus, member_certifications.c.state
            ).where(member_certifications.c.member_id == member_id)
        )
    ).all()
    return [domain.HeldCertification(program, bool(emeritus)) for program, emeritus, state in rows if state == "active"]


async def refresh_standing(session: AsyncSession, member_id: str, now: datetime, publish: Publish) -> bool:
    """Recompute the member's standing and designations; store and publish them if they changed."""
    row = (
        await session.execute(select(members.c.status, members.c.designations).where(members.c.id == member_id))
    ).first()
    if row is None:
        return False
    membership = await load_membership(session, member_id)
    status = domain.member_status(membership, now.date())
    designations = list(domain.designations(await held_certifications(session, member_id)))
    if status.value == row.status and designations == list(row.designations or []):
        return False
    await session.execute(
        update(members).where(members.c.id == member_id).values(status=status.value, designations=designations)
    )
    await publish(
        MemberStatusChanged(
            member_id=member_id,
            previous_status=row.status,
            status=status.value,
            designations=tuple(designations),
            changed_at=now,
        ),
        topic=TOPIC,
    )
    return True


# -- dues -----------------------------------------------------------------------------------------------


async def apply_dues(
    session: AsyncSession, member_id: str, order_id: str, paid_on: date, now: datetime, publish: Publish
) -> domain.Membership:
    """One year of dues paid for `member_id`: the new term, stored and announced."""
    current = await load_membership(session, member_id)
    membership, change = domain.pay_dues(current, member_id, paid_on)
    values = {
        "member_since": membership.member_since,
        "term_start": membership.term_start,
        "term_end": membership.term_end,
        "last_order_id": order_id,
        "updated_at": now,
    }
    if current is None:
        await session.execute(memberships.insert().values(member_id=member_id, **values))
    else:
        await session.execute(update(memberships).where(memberships.c.member_id == member_id).values(**values))
    event: Event
    if change is domain.TermChange.STARTED:
        event = MembershipStarted(
            member_id=member_id,
            order_id=order_id,
            term_start=membership.term_start,
            term_end=membership.term_end,
            started_at=now,
        )
    else:
        event = MembershipRenewed(
            member_id=member_id,
            order_id=order_id,
            term_start=membership.term_start,
            term_end=membership.term_end,
            renewed_at=now,
        )
    await publish(event, topic=TOPIC)
    return membership


async def on_order_paid(event: OrderPaid, session: AsyncSession, publish: Publish, clock: Clock) -> None:
    for line in event.lines:
        if line.kind != "dues":
            continue
        member_id = line.beneficiary_id or event.member_id or line.reference
        exists = await session.scalar(select(members.c.id).where(members.c.id == member_id))
        if exists is None:
            log.warning("dues paid in order %s for unknown member %s; ignored", event.order_id, member_id)
            continue
        now = clock.now()
        for _ in range(line.quantity):
            await apply_dues(session, member_id, event.order_id, event.paid_at.date(), now, publish)
        await refresh_standing(session, member_id, now, publish)


# -- certifications read model ----------------------------------------------------------------------------


async def _upsert_certification(
    session: AsyncSession,
    certification_id: str,
    member_id: str,
    program: str,
    now: datetime,
    *,
    state: str | None = None,
    emeritus: bool | None = None,
    expires_on: date | None = None,
) -> None:
    c = member_certifications.c
    exists = await session.scalar(select(c.certification_id).where(c.certification_id == certification_id))
    values: dict[str, Any] = {"updated_at": now}
    if state is not None:
        values["state"] = state
    if emeritus is not None:
        values["emeritus"] = emeritus
    if expires_on is not None:
        values["expires_on"] = expires_on
    if exists is None:
        values.setdefault("state", "active")
        values.setdefault("emeritus", False)
        await session.execute(
            member_certifications.insert().values(
                certification_id=certification_id, member_id=member_id, program=program, **values
            )
        )
    else:
        await session.execute(
            update(member_certifications).where(c.certification_id == certification_id).values(**values)
        )


async def on_certification_awarded(
    event: CertificationAwarded | CertificationRenewed, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    """An award or a renewal: the certification is active until its (new) expiry."""
    now = clock.now()
    await _upsert_certification(
        session,
        event.certification_id,
        event.member_id,
        event.program,
        now,
        state="active",
        expires_on=event.expires_on,
    )
    await refresh_standing(session, event.member_id, now, publish)


async def on_certification_expired(
    event: CertificationExpired, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    now = clock.now()
    await _upsert_certification(session, event.certification_id, event.member_id, event.program, now, state="expired")
    await refresh_standing(session, event.member_id, now, publish)


async def on_certification_lapsed(
    event: CertificationLapsed, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    now = clock.now()
    await _upsert_certification(session, event.certification_id, event.member_id, event.program, now, state="lapsed")
    await refresh_standing(session, event.member_id, now, publish)


async def on_emeritus_granted(
    event: CertificationEmeritusGranted, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    now = clock.now()
    await _upsert_certification(
        session, event.certification_id, event.member_id, event.program, now, state="active", emeritus=True
    )
    await refresh_standing(session, event.member_id, now, publish)


# -- company roles ------------------------------------------------------------------------------------------


async def on_company_roles_changed(
    event: CompanyRolesChanged, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    """The member's next token says whether they administer the company; the tokens naming them its
    administrator stop working at once when they no longer are."""
    row = (
        await session.execute(select(members.c.roles, members.c.company_id).where(members.c.id == event.member_id))
    ).first()
    if row is None:
        log.warning("roles changed for unknown member %s; ignored", event.member_id)
        return
    roles = set(row.roles or ["member"])
    company_id = row.company_id
    if "admin" in event.roles:
        roles.add("company_admin")
        company_id = event.company_id
    elif company_id == event.company_id:
        roles.discard("company_admin")
        company_id = None
    await _set_company_roles(session, event.member_id, row, roles, company_id, publish, clock, "company_role_removed")


async def on_employment_changed(
    event: CompanyEmploymentChanged, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    """An employment ended: the member administers that company no longer (companies takes the roles
    away first; this holds even if an event between was lost to a dead-letter queue)."""
    if event.employed:
        return
    row = (
        await session.execute(select(members.c.roles, members.c.company_id).where(members.c.id == event.member_id))
    ).first()
    if row is None or row.company_id != event.company_id:
        return
    roles = set(row.roles or ["member"]) - {"company_admin"}
    await _set_company_roles(session, event.member_id, row, roles, None, publish, clock, "employment_ended")


async def _set_company_roles(
    session: AsyncSession,
    member_id: str,
    row: Any,
    roles: set[str],
    company_id: str | None,
    publish: Publish,
    clock: Clock,
    reason: Literal["company_role_removed", "employment_ended"],
) -> None:
    before = set(row.roles or ["member"])
    if roles == before and company_id == row.company_id:
        return
    await session.execute(
        update(members)
        .where(members.c.id == member_id)
        .values(roles=sorted(roles), company_id=company_id, updated_at=clock.now())
    )
    lost_admin = "company_admin" in before and row.company_id is not None and company_id != row.company_id
    if lost_admin:
        await revoke_all_sessions(publish, session, member_id, reason)


# -- the daily sweep ---------------------------------------------------------------------------------------


async def sweep_memberships(session: AsyncSession, now: datetime, publish: Publish) -> int:
    """Members whose term ended: standing moves to grace, then lapsed (announced once per term)."""
    today = now.date()
    rows = (
        await session.execute(
            select(memberships.c.member_id, memberships.c.term_end, memberships.c.lapse_published_for)
            .join(members, members.c.id == memberships.c.member_id)
            .where(memberships.c.term_end <= today)
            .where(members.c.status.in_(("active", "grace")))
        )
    ).all()
    changed = 0
    for member_id, term_end, lapse_published_for in rows:
        membership = await load_membership(session, member_id)
        assert membership is not None
        if domain.member_status(membership, today) is domain.MemberStatus.LAPSED and lapse_published_for != term_end:
            await publish(
                MembershipLapsed(member_id=member_id, term_end=term_end, lapsed_on=domain.lapses_on(membership)),
                topic=TOPIC,
            )
            await session.execute(
                update(memberships).where(memberships.c.member_id == member_id).values(lapse_published_for=term_end)
            )
        if await refresh_standing(session, member_id, now, publish):
            changed += 1
    return changed


HANDLERS: dict[str | type[Event], Callable[..., Awaitable[None]]] = {
    OrderPaid: on_order_paid,
    CertificationAwarded: on_certification_awarded,
    CertificationRenewed: on_certification_awarded,
    CertificationExpired: on_certification_expired,
    CertificationLapsed: on_certification_lapsed,
    CertificationEmeritusGranted: on_emeritus_granted,
    CompanyRolesChanged: on_company_roles_changed,
    CompanyEmploymentChanged: on_employment_changed,
}
