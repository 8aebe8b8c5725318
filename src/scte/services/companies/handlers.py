"""Event handlers: keep the read models of members, certifications and training spend, and recompute
the rollups of the companies an event touches. Each runs in the bus inbox's transaction, so a
redelivered event changes nothing twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish
from scte.bus.contracts import Event
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationEmeritusGranted,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
)
from scte.contracts.commerce import OrderPaid, PoCharged
from scte.contracts.members import MemberProfileUpdated, MemberRegistered, MemberStatusChanged
from scte.kit.clock import Clock
from scte.kit.db import upsert

from .db import cert_views, member_views, spend_entries
from .store import Emit, companies_of_member, recompute

__all__ = ["HANDLERS", "TOPIC"]

TOPIC = "companies"

TRAINING_PRODUCTS = frozenset({"course_seat", "exam_fee", "renewal_fee"})
"""What counts as training spend; dues are membership, not training."""


def _emitter(publish: Publish) -> Emit:
    async def emit(event: Event) -> object:
        return await publish(event, topic=TOPIC)

    return emit


async def _recompute_member(session: AsyncSession, member_id: str, publish: Publish, clock: Clock) -> None:
    now = clock.now()
    for company_id in await companies_of_member(session, member_id, now.date()):
        await recompute(session, company_id, now, _emitter(publish))


async def _certification(
    session: AsyncSession, publish: Publish, clock: Clock, event: Any, *, held: bool, expires_on: Any
) -> None:
    values = {
        "certification_id": event.certification_id,
        "member_id": event.member_id,
        "program": event.program,
        "expires_on": expires_on,
        "held": held,
    }
    await upsert(session, cert_views, values, ["certification_id"])
    await _recompute_member(session, event.member_id, publish, clock)


async def on_certification_awarded(
    event: CertificationAwarded, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    await _certification(session, publish, clock, event, held=True, expires_on=event.expires_on)


async def on_certification_renewed(
    event: CertificationRenewed, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    await _certification(session, publish, clock, event, held=True, expires_on=event.expires_on)


async def on_certification_expired(
    event: CertificationExpired, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    await _certification(session, publish, clock, event, held=False, expires_on=event.expired_on)


async def on_certification_lapsed(
    event: CertificationLapsed, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    await _certification(session, publish, clock, event, held=False, expires_on=None)


async def on_emeritus_granted(
    event: CertificationEmeritusGranted, session: AsyncSession, publish: Publish, clock: Clock
) -> None:
    await _certification(session, publish, clock, event, held=True, expires_on=None)


async def on_member_registered(event: MemberRegistered, session: AsyncSession) -> None:
    values = {"member_id": event.member_id, "email": event.email, "display_name": event.display_name}
    await upsert(session, member_views, {**values, "designations": []}, ["member_id"], update=False)
    await upsert(session, member_views, values, ["member_id"])


async def on_member_profile_updated(event: MemberProfileUpdated, session: AsyncSession) -> None:
    values = {"member_id": event.member_id, "display_name": event.display_name}
    await upsert(session, member_views, {**values, "designations": []}, ["member_id"], update=False)
    await upsert(session, member_views, values, ["member_id"])


async def on_member_status_changed(event: MemberStatusChanged, session: AsyncSession) -> None:
    values = {"member_id": event.member_id, "status": event.status, "designations": list(event.designations)}
    await upsert(session, member_views, values, ["member_id"])


async def on_order_paid(event: OrderPaid, session: AsyncSession, publish: Publish, clock: Clock) -> None:
    if event.company_id is None:
        return
    training = sum(line.unit_price_cents * line.quantity for line in event.lines if line.kind in TRAINING_PRODUCTS)
    values = {
        "order_id": event.order_id,
        "company_id": event.company_id,
        "amount_cents": training,
        "currency": event.currency,
        "paid_at": event.paid_at,
    }
    await upsert(session, spend_entries, values, ["order_id"])  # the order's lines are the better figure
    await recompute(session, event.company_id, clock.now(), _emitter(publish))


async def on_po_charged(event: PoCharged, session: AsyncSession, publish: Publish, clock: Clock) -> None:
    values = {
        "order_id": event.order_id,
        "company_id": event.company_id,
        "amount_cents": event.amount_cents,
        "currency": event.currency,
        "paid_at": event.charged_at,
    }
    await upsert(session, spend_entries, values, ["order_id"], update=False)
    await recompute(session, event.company_id, clock.now(), _emitter(publish))


HANDLERS: dict[str | type[Event], Handler] = {
    CertificationAwarded: on_certification_awarded,
    CertificationRenewed: on_certification_renewed,
    CertificationExpired: on_certification_expired,
    CertificationLapsed: on_certification_lapsed,
    CertificationEmeritusGranted: on_emeritus_granted,
    MemberRegistered: on_member_registered,
    MemberProfileUpdated: on_member_profile_updated,
    MemberStatusChanged: on_member_status_changed,
    OrderPaid: on_order_paid,
    PoCharged: on_po_charged,
}
"""Event type -> handler: the queue's subscriptions are derived from it."""
