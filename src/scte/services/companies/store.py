"""Reads and writes shared by the handlers and the API: upserts, and recomputing a rollup (published
as company.rollup_changed only when a figure changed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.contracts import Event
from scte.contracts.companies import CompanyRollupChanged
from scte.kit.db import serialize, upsert

from .db import cert_views, companies, employments, rollups, spend_entries
from .domain import CertificationView, Employment, Rollup, SpendEntry, compute_rollup

__all__ = ["Emit", "companies_of_member", "compute", "recompute"]

Emit = Callable[[Event], Awaitable[object]]
"""Adds an event to the outbox of the current transaction (topic `companies`)."""


async def companies_of_member(session: AsyncSession, member_id: str, on: date) -> list[str]:
    rows = await session.scalars(
        select(employments.c.company_id)
        .where(
            employments.c.member_id == member_id,
            employments.c.started_on <= on,
            or_(employments.c.ended_on.is_(None), employments.c.ended_on > on),
        )
        .distinct()
    )
    return sorted(rows)


async def compute(session: AsyncSession, company_id: str, now: datetime) -> Rollup | None:
    """The company's rollup today, from the read models; None for an unknown company."""
    currency = await session.scalar(select(companies.c.currency).where(companies.c.company_id == company_id))
    if currency is None:
        return None
    links = [
        Employment(r.member_id, r.company_id, r.started_on, r.ended_on)
        for r in await session.execute(select(employments).where(employments.c.company_id == company_id))
    ]
    members = {link.member_id for link in links}
    certs = [
        CertificationView(r.certification_id, r.member_id, r.program, r.expires_on, r.held)
        for r in await session.execute(select(cert_views).where(cert_views.c.member_id.in_(members)))
    ]
    year_start = datetime(now.year, 1, 1, tzinfo=now.tzinfo)
    spend = [
        SpendEntry(r.order_id, r.amount_cents, r.currency, r.paid_at)
        for r in await session.execute(
            select(spend_entries).where(
                and_(spend_entries.c.company_id == company_id, spend_entries.c.paid_at >= year_start)
            )
        )
    ]
    return compute_rollup(company_id, links, certs, spend, now.date(), currency=currency)


async def recompute(session: AsyncSession, company_id: str, now: datetime, emit: Emit) -> Rollup | None:
    """Recompute and store the rollup; emit company.rollup_changed when a figure changed."""
    await serialize(session, f"company:{company_id}")
    rollup = await compute(session, company_id, now)
    if rollup is None:
        return None
    row = (await session.execute(select(rollups).where(rollups.c.company_id == company_id))).first()
    previous = (
        Rollup(
            company_id=row.company_id,
            employee_count=row.employee_count,
            certified_headcount=dict(row.certified_headcount),
            expiring_within_days=row.expiring_within_days,
            expiring_count=row.expiring_count,
            training_spend_cents=row.training_spend_cents,
            currency=row.currency,
        )
        if row is not None
        else None
    )
    if not rollup.differs_from(previous):
        return rollup
    values = {
        "company_id": company_id,
        "as_of": now,
        "employee_count": rollup.employee_count,
        "certified_headcount": rollup.certified_headcount,
        "expiring_within_days": rollup.expiring_within_days,
        "expiring_count": rollup.expiring_count,
        "training_spend_cents": rollup.training_spend_cents,
        "currency": rollup.currency,
    }
    await upsert(session, rollups, values, ["company_id"])
    await emit(
        CompanyRollupChanged(
            company_id=company_id,
            as_of=now,
            employee_count=rollup.employee_count,
            certified_headcount=rollup.certified_headcount,
            expiring_within_days=rollup.expiring_within_days,
            expiring_count=rollup.expiring_count,
            training_spend_cents=rollup.training_spend_cents,
            currency=rollup.currency,
        )
    )
    return rollup
