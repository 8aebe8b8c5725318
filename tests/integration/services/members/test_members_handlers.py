"""Members' event handlers: dues -> membership started/renewed; certification events -> designations;
company roles -> the company_admin role; the sweep -> grace and lapsed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from scte.bus.testing import BusHarness
from scte.bus.topology import Topology
from scte.contracts.certification import CertificationAwarded, CertificationEmeritusGranted, CertificationExpired
from scte.contracts.commerce import OrderLine, OrderPaid
from scte.contracts.companies import CompanyRolesChanged
from scte.contracts.members import MembershipRenewed, MembershipStarted, MemberStatusChanged
from scte.kit.clock import Clock, FixedClock
from scte.kit.runtime import ServiceRuntime
from scte.platform import TOPICS
from scte.services.members import handlers
from scte.services.members.db import members, memberships, metadata
from scte.services.members.service import QUEUE

from .test_members_api import register

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def dues(order_id: str, member_id: str, paid_at: datetime = NOW) -> OrderPaid:
    return OrderPaid(
        order_id=order_id,
        member_id=member_id,
        lines=(OrderLine(kind="dues", reference=member_id, unit_price_cents=15000),),
        total_cents=15000,
        currency="USD",
        payment_method="card",
        paid_at=paid_at,
    )


def awarded(cert: str, member_id: str, program: str) -> CertificationAwarded:
    return CertificationAwarded(
        certification_id=cert,
        member_id=member_id,
        program=program,
        program_name=program,
        awarded_on=NOW.date(),
        expires_on=date(2029, 3, 1),
    )


class Collect:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, event: Any, *, topic: str) -> None:
        assert topic == "members"
        self.events.append(event)


async def test_handlers_on_both_databases(runtime: ServiceRuntime, client: httpx.AsyncClient) -> None:
    """The handlers' effects, called directly in a session (SQLite and PostgreSQL)."""
    jane = (await register(client))["id"]
    assert runtime.context is not None
    clock = FixedClock(NOW)
    publish = Collect()
    async with runtime.context.sessionmaker() as session, session.begin():
        await handlers.on_order_paid(dues("o1", jane), session, publish, clock)
        await handlers.on_certification_awarded(awarded("c1", jane, "BPI"), session, publish, clock)
        await handlers.on_certification_awarded(awarded("c2", jane, "BDS"), session, publish, clock)
        await handlers.on_company_roles_changed(
            CompanyRolesChanged(company_id="acme", member_id=jane, roles=("admin",), changed_at=NOW),
            session,
            publish,
            clock,
        )
    kinds = [type(e).__name__ for e in publish.events]
    assert kinds == ["MembershipStarted", "MemberStatusChanged", "MemberStatusChanged", "MemberStatusChanged"]
    assert publish.events[-1].designations == ("BDS", "BPI")
    async with runtime.context.sessionmaker() as session:
        row = (await session.execute(select(members).where(members.c.id == jane))).mappings().one()
        assert row["status"] == "active"
        assert row["roles"] == ["company_admin", "member"]
        assert row["company_id"] == "acme"

    # a year and a half later, unpaid: grace, then lapsed (announced once)
    publish = Collect()
    async with runtime.context.sessionmaker() as session, session.begin():
        assert await handlers.sweep_memberships(session, NOW + timedelta(days=370), publish) == 1
        assert await handlers.sweep_memberships(session, NOW + timedelta(days=400), publish) == 1
        assert await handlers.sweep_memberships(session, NOW + timedelta(days=401), publish) == 0
    assert [type(e).__name__ for e in publish.events] == [
        "MemberStatusChanged",
        "MembershipLapsed",
        "MemberStatusChanged",
    ]
    assert publish.events[-1].status == "lapsed"


async def test_dues_through_the_bus() -> None:
    """order.paid on the commerce topic reaches members' queue; membership starts, then is renewed."""
    async with BusHarness(
        Topology(TOPICS, (QUEUE,)),
        source="test",
        metadata=metadata,
        dependencies={"clock": Clock()},
    ) as bus:
        async with bus.sessionmaker() as session, session.begin():
            await session.execute(
                members.insert().values(
                    id="m1",
                    email="m1@example.com",
                    password_hash="x",
                    display_name="M One",
                    listed_in_directory=False,
                    roles=["member"],
                    status="prospect",
                    designations=[],
                    registered_at=NOW,
                    updated_at=NOW,
                )
            )
        bus.consumer("members", handlers.HANDLERS)
        paid = datetime.now(UTC)
        await bus.publish(dues("o1", "m1", paid), topic="commerce")
        await bus.publish(dues("o2", "m1", paid), topic="commerce")
        await bus.publish(dues("o-unknown", "ghost", paid), topic="commerce")
        await bus.run_until_idle()  # topics are ordered within themselves, not across each other
        await bus.publish(CertificationAwarded(**{**awarded("c1", "m1", "BPI").model_dump()}), topic="certification")
        await bus.publish(
            CertificationExpired(
                certification_id="c1", member_id="m1", program="BPI", expired_on=paid.date(), lapses_on=paid.date()
            ),
            topic="certification",
        )
        await bus.run_until_idle()
        await bus.publish(
            CertificationEmeritusGranted(
                certification_id="c9",
                member_id="m1",
                program="BDS",
                originally_awarded_on=date(2000, 1, 1),
                granted_on=paid.date(),
            ),
            topic="certification",
        )
        await bus.run_until_idle()
        assert await bus.dead_letters("members") == []
        started = bus.published(MembershipStarted)
        renewed = bus.published(MembershipRenewed)
        assert len(started) == 1 and len(renewed) == 1
        assert renewed[0].term_start == started[0].term_end
        statuses = bus.published(MemberStatusChanged)
        assert [(s.status, s.designations) for s in statuses] == [
            ("active", ()),
            ("active", ("BPI",)),
            ("active", ()),
            ("active", ("BDS-E",)),
        ]
        async with bus.sessionmaker() as session:
            term = (await session.execute(select(memberships))).mappings().one()
            assert term["last_order_id"] in ("o1", "o2")  # two orders: two message groups, either order
