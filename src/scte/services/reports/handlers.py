"""Event handlers: each business event moves one counter, in the bus inbox's transaction (so each
event counts once however often it is delivered)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler
from scte.bus.contracts import Event
from scte.contracts.certification import CertificationAwarded
from scte.contracts.commerce import OrderPaid
from scte.contracts.learning import CourseCompleted
from scte.contracts.members import MemberRegistered, MemberStatusChanged
from scte.kit.db import dialect_insert

from .db import award_counts, completion_counts, member_statuses, revenue
from .domain import month_key

__all__ = ["HANDLERS"]


async def _add(session: AsyncSession, table: Table, keys: dict[str, str], column: str, amount: int) -> None:
    """counter[keys] += amount, creating the row when missing."""
    statement = dialect_insert(session)(table).values(**keys, **{column: amount})
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys), set_={column: getattr(table.c, column) + statement.excluded[column]}
        )
    )


async def on_member_registered(event: MemberRegistered, session: AsyncSession) -> None:
    statement = dialect_insert(session)(member_statuses).values(member_id=event.member_id, status="prospect")
    await session.execute(statement.on_conflict_do_nothing(index_elements=["member_id"]))


async def on_member_status_changed(event: MemberStatusChanged, session: AsyncSession) -> None:
    statement = dialect_insert(session)(member_statuses).values(member_id=event.member_id, status=event.status)
    await session.execute(statement.on_conflict_do_update(index_elements=["member_id"], set_={"status": event.status}))


async def on_certification_awarded(event: CertificationAwarded, session: AsyncSession) -> None:
    await _add(session, award_counts, {"program": event.program, "month": month_key(event.awarded_on)}, "count", 1)


async def on_order_paid(event: OrderPaid, session: AsyncSession) -> None:
    keys = {"month": month_key(event.paid_at), "currency": event.currency}
    await _add(session, revenue, keys, "cents", event.total_cents)


async def on_course_completed(event: CourseCompleted, session: AsyncSession) -> None:
    await _add(session, completion_counts, {"month": month_key(event.completed_at)}, "count", 1)


HANDLERS: dict[str | type[Event], Handler] = {
    MemberRegistered: on_member_registered,
    MemberStatusChanged: on_member_status_changed,
    CertificationAwarded: on_certification_awarded,
    OrderPaid: on_order_paid,
    CourseCompleted: on_course_completed,
}
