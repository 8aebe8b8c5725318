"""Event handlers: keep the recipients and company-admin read models, and turn each routed event
into pending notices in the delivery log (one per recipient and channel). Sending is the
dispatcher's job, so a slow or refusing mail server never holds a message on the queue."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler
from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.contracts import certification, commerce, companies, learning, members, reports
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.kit.clock import Clock
from scte.kit.db import upsert

from .db import company_admins, deliveries, employments, preferences, recipients
from .domain import ROUTES, Audience, Category, Channel, Preferences, Route, channels_for, routes_for

__all__ = ["HANDLERS", "NAMESPACE", "notification_id", "notify"]

NAMESPACE = uuid.UUID("6b1f7d3e-2f0a-4c55-9d7e-5c7e0b0a0006")


def notification_id(event_id: str, template: str, recipient_id: str, channel: Channel) -> str:
    """Derived from what caused it, so handling an event twice cannot send twice."""
    return str(uuid.uuid5(NAMESPACE, f"{event_id}|{template}|{recipient_id}|{channel}"))


async def load_preferences(session: AsyncSession, member_id: str) -> Preferences:
    row = (await session.execute(select(preferences).where(preferences.c.member_id == member_id))).first()
    if row is None:
        return Preferences()
    return Preferences(
        channels={Category(k): frozenset(Channel(c) for c in v) for k, v in (row.channels or {}).items()},
        has_phone=bool(row.phone),
        has_push_device=bool(row.push_token),
    )


async def _admins_for(session: AsyncSession, event: Event, member_id: str | None) -> list[str]:
    company_id = getattr(event, "company_id", None)
    if company_id is not None:
        companies = [company_id]
    elif member_id is not None:
        companies = list(
            await session.scalars(select(employments.c.company_id).where(employments.c.member_id == member_id))
        )
    else:
        return []
    admins = await session.scalars(
        select(company_admins.c.member_id).where(company_admins.c.company_id.in_(companies)).distinct()
    )
    return sorted(a for a in admins if a != member_id)


async def _audience(session: AsyncSession, route: Route, event: Event) -> list[str]:
    member_id: str | None = getattr(event, "member_id", None)
    if route.audience is Audience.MEMBER:
        return [member_id] if member_id else []
    if route.audience is Audience.REQUESTER:
        requester: str | None = getattr(event, "requested_by", None)
        return [requester] if requester else []
    return await _admins_for(session, event, member_id)


async def notify(event: Event, envelope: Envelope, session: AsyncSession, clock: Clock) -> None:
    """The pending notices an event causes, due now."""
    now = clock.now()
    body = event.model_dump(mode="json")
    for route in routes_for(envelope.type):
        for recipient_id in await _audience(session, route, event):
            prefs = await load_preferences(session, recipient_id)
            for channel in channels_for(route, prefs):
                values = {
                    "notification_id": notification_id(envelope.id, route.template, recipient_id, channel),
                    "recipient_id": recipient_id,
                    "channel": str(channel),
                    "template": route.template,
                    "cause_event_id": envelope.id,
                    "cause_event_type": envelope.type,
                    "correlation_id": envelope.correlation_id,
                    "context": {"event": body, "member_id": getattr(event, "member_id", None)},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                await upsert(session, deliveries, values, ["notification_id"], update=False)


async def on_member_registered(
    event: members.MemberRegistered, envelope: Envelope, session: AsyncSession, clock: Clock
) -> None:
    values = {"member_id": event.member_id, "email": event.email, "display_name": event.display_name}
    await upsert(session, recipients, values, ["member_id"])
    await notify(event, envelope, session, clock)


async def on_member_profile_updated(event: members.MemberProfileUpdated, session: AsyncSession) -> None:
    await upsert(session, recipients, {"member_id": event.member_id, "display_name": event.display_name}, ["member_id"])


async def on_employment_changed(event: CompanyEmploymentChanged, session: AsyncSession) -> None:
    if event.employed:
        values = {"company_id": event.company_id, "member_id": event.member_id}
        await upsert(session, employments, values, ["company_id", "member_id"], update=False)
    else:
        await session.execute(
            delete(employments).where(
                employments.c.company_id == event.company_id, employments.c.member_id == event.member_id
            )
        )


async def on_roles_changed(event: CompanyRolesChanged, session: AsyncSession) -> None:
    if "admin" in event.roles:
        values = {"company_id": event.company_id, "member_id": event.member_id}
        await upsert(session, company_admins, values, ["company_id", "member_id"], update=False)
    else:
        await session.execute(
            delete(company_admins).where(
                company_admins.c.company_id == event.company_id, company_admins.c.member_id == event.member_id
            )
        )


def _routed_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    for module in (members, learning, certification, commerce, companies, reports):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Event) and value.__dict__.get("event_type") in ROUTES:
                found[value.event_type] = value
    return found


HANDLERS: dict[str | type[Event], Handler] = {
    **{cls: notify for cls in _routed_types().values()},
    members.MemberRegistered: on_member_registered,
    members.MemberProfileUpdated: on_member_profile_updated,
    CompanyEmploymentChanged: on_employment_changed,
    CompanyRolesChanged: on_roles_changed,
}
"""Event type -> handler: every type in ROUTES sends notices; a few also feed read models."""
