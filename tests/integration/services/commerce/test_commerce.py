"""Commerce on its real runtime and on the bus harness (SQLite and PostgreSQL): orders, card payments
through the embedded processor, purchase-order charges, and the monthly invoice run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from b_support import KINDS, Running, assert_error, harness, running, transaction
from sqlalchemy import select

from scte.bus.storage import bus_outbox
from scte.bus.testing import BusHarness
from scte.contracts.commerce import InvoiceIssued, OrderPaid, PoCharged
from scte.services.commerce import db
from scte.services.commerce.domain import ProductKind
from scte.services.commerce.handlers import (
    HANDLERS,
    LineRequest,
    charge_purchase_order,
    create_purchase_order,
    place,
)
from scte.services.commerce.service import QUEUE, build_runtime

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
GOOD_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DECLINED_CARD = {**GOOD_CARD, "number": "4000000000000002"}


# --- the monthly invoice run on the harness ---------------------------------------------------------


@pytest.fixture(params=KINDS)
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    async with harness(
        request.param, tmp_path, service="commerce", metadata=db.metadata, queue=QUEUE, handlers=HANDLERS
    ) as b:
        yield b


async def test_po_charges_land_on_the_invoice_issued_on_the_first_of_the_next_month(bus: BusHarness) -> None:
    now = bus.now()
    async with transaction(bus) as tx:
        po = await create_purchase_order(
            tx.session,
            company_id="acme",
            number="PO-1",
            limit_cents=50_000,
            currency="USD",
            valid_from=now.date() - timedelta(days=1),
            valid_until=now.date() + timedelta(days=90),
            now=now,
        )
        orders = [
            await place(
                tx.session,
                member_id=None,
                company_id="acme",
                lines=[LineRequest(ProductKind.COURSE_SEAT, "c1", 1, f"m{i}")],
                created_by="admin",
                now=now,
            )
            for i in range(2)
        ]
    for order in orders:
        async with transaction(bus) as tx:
            await charge_purchase_order(
                tx.session, tx.publish, tx.schedule, po_id=str(po["po_id"]), order_id=order.order_id, now=bus.now()
            )
    await bus.run_until_idle()
    charges = bus.published(PoCharged)
    assert [c.remaining_cents for c in charges] == [50_000 - 19_500, 50_000 - 39_000]
    paid = bus.published(OrderPaid)
    assert [p.payment_method for p in paid] == ["purchase_order", "purchase_order"]
    assert paid[0].lines[0].beneficiary_id == "m0"
    assert bus.published(InvoiceIssued) == []

    first = date(now.year + (now.month == 12), now.month % 12 + 1, 1)
    bus.advance((datetime.combine(first, datetime.min.time(), UTC) - bus.now()).total_seconds() - 60)
    await bus.run_until_idle()
    assert bus.published(InvoiceIssued) == []  # not a minute early
    bus.advance(120)
    await bus.run_until_idle()
    [invoice] = bus.published(InvoiceIssued)
    assert invoice.invoice_id == f"INV-acme-{now:%Y-%m}"
    assert (invoice.charge_count, invoice.total_cents, invoice.issued_on) == (2, 39_000, first)
    assert invoice.due_on == first + timedelta(days=30)
    assert await bus.dead_letters("commerce") == []


# --- the API ----------------------------------------------------------------------------------------


@pytest.fixture(params=KINDS)
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    async with running(request.param, tmp_path, service="commerce", build_runtime=build_runtime, at=START) as r:
        yield r


async def outbox_types(svc: Running) -> list[str]:
    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session:
        return list((await session.scalars(select(bus_outbox.c.event_type).order_by(bus_outbox.c.id))).all())


async def test_a_member_orders_and_pays_dues_by_card(svc: Running) -> None:
    me = svc.as_member("m1")
    order = await svc.client.post(
        "/orders", json={"lines": [{"kind": "dues"}, {"kind": "exam_fee", "reference": "BPI"}]}, headers=me
    )
    assert order.status_code == 201, order.text
    body = order.json()
    assert body["status"] == "pending" and body["total_cents"] == 8_500 + 9_500
    assert body["lines"][0]["reference"] == "m1"
    order_id = body["order_id"]

    assert_error(await svc.client.get(f"/orders/{order_id}", headers=svc.as_member("m2")), 403)
    assert_error(
        await svc.client.post(f"/orders/{order_id}/pay", json={"card": GOOD_CARD}, headers=svc.as_member("m2")), 403
    )
    declined = assert_error(
        await svc.client.post(f"/orders/{order_id}/pay", json={"card": DECLINED_CARD}, headers=me), 402
    )
    assert "declined" in declined["message"]
    assert (await svc.client.get(f"/orders/{order_id}", headers=me)).json()["status"] == "failed"
    ok = await svc.client.post(f"/orders/{order_id}/pay", json={"card": GOOD_CARD}, headers=me)
    assert ok.status_code == 200 and ok.json()["status"] == "paid" and ok.json()["payment_method"] == "card"
    assert_error(await svc.client.post(f"/orders/{order_id}/pay", json={"card": GOOD_CARD}, headers=me), 409)
    assert await outbox_types(svc) == ["payment.failed.v1", "order.paid.v1"]
    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session:
        payments = (await session.execute(select(db.payments).order_by(db.payments.c.created_at))).mappings().all()
    assert sorted(p["outcome"] for p in payments) == ["declined", "succeeded"]
    mine = await svc.client.get("/members/m1/orders", headers=me)
    assert [o["order_id"] for o in mine.json()] == [order_id]
    assert_error(await svc.client.get("/members/m1/orders", headers=svc.as_member("m2")), 403)


async def test_company_purchase_orders_charges_and_invoices(svc: Running) -> None:
    admin = svc.as_member("boss", "member", "company_admin", company_id="acme")
    other_admin = svc.as_member("rival", "member", "company_admin", company_id="globex")
    po_body = {"number": "PO-7", "limit_cents": 30_000, "valid_from": "2026-03-01", "valid_until": "2026-12-31"}
    assert_error(await svc.client.post("/companies/acme/purchase-orders", json=po_body, headers=other_admin), 403)
    assert_error(
        await svc.client.post("/companies/acme/purchase-orders", json=po_body, headers=svc.as_member("m1")), 403
    )
    po = await svc.client.post("/companies/acme/purchase-orders", json=po_body, headers=admin)
    assert po.status_code == 201, po.text
    po_id = po.json()["po_id"]
    assert_error(await svc.client.post("/companies/acme/purchase-orders", json=po_body, headers=admin), 409)

    seat = {
        "company_id": "acme",
        "lines": [{"kind": "course_seat", "reference": "fiber-fundamentals", "beneficiary_id": "m1"}],
    }
    assert_error(await svc.client.post("/orders", json=seat, headers=other_admin), 403)
    first = (await svc.client.post("/orders", json=seat, headers=admin)).json()
    second = (await svc.client.post("/orders", json=seat, headers=admin)).json()
    charged = await svc.client.post(
        f"/purchase-orders/{po_id}/charges", json={"order_id": first["order_id"]}, headers=admin
    )
    assert charged.status_code == 201, charged.text
    assert charged.json()["remaining_cents"] == 30_000 - 19_500
    over = assert_error(
        await svc.client.post(
            f"/purchase-orders/{po_id}/charges", json={"order_id": second["order_id"]}, headers=admin
        ),
        400,
    )
    assert "cents left" in over["message"]
    assert_error(
        await svc.client.post(f"/purchase-orders/{po_id}/charges", json={"order_id": first["order_id"]}, headers=admin),
        409,
    )
    assert_error(
        await svc.client.post(
            f"/purchase-orders/{po_id}/charges", json={"order_id": first["order_id"]}, headers=other_admin
        ),
        403,
    )

    early = assert_error(
        await svc.client.post("/invoices/issue", params={"month": "2026-03"}, headers=svc.staff()), 400
    )
    assert "can be issued from 2026-04-01" in early["message"]
    svc.clock.set(datetime(2026, 4, 1, 9, tzinfo=UTC))
    assert_error(await svc.client.post("/invoices/issue", params={"month": "2026-03"}, headers=admin), 403)
    issued = await svc.client.post("/invoices/issue", params={"month": "2026-03"}, headers=svc.staff())
    assert issued.status_code == 200, issued.text
    [invoice] = issued.json()
    assert (invoice["invoice_id"], invoice["total_cents"], invoice["charge_count"]) == ("INV-acme-2026-03", 19_500, 1)
    again = await svc.client.post("/invoices/issue", params={"month": "2026-03"}, headers=svc.staff())
    assert again.json() == issued.json()
    assert (await outbox_types(svc)).count("invoice.issued.v1") == 1

    listed = await svc.client.get("/companies/acme/invoices", headers=admin)
    assert [i["invoice_id"] for i in listed.json()] == ["INV-acme-2026-03"]
    assert listed.json()[0]["charges"][0]["order_id"] == first["order_id"]
    assert_error(await svc.client.get("/companies/acme/invoices", headers=other_admin), 403)
    assert_error(await svc.client.get("/companies/acme/invoices", headers=svc.as_member("m1")), 403)
    assert (await svc.client.get("/companies/acme/invoices", headers=svc.staff())).status_code == 200


async def test_bad_input_and_missing_tokens_are_refused_with_a_message(svc: Running) -> None:
    me = svc.as_member("m1")
    assert_error(await svc.client.post("/orders", json={"lines": [{"kind": "dues"}]}), 401)
    assert_error(await svc.client.get("/companies/acme/invoices"), 401)
    assert_error(await svc.client.post("/orders", json={"lines": []}, headers=me), 422)
    assert_error(await svc.client.post("/orders", json={"lines": [{"kind": "gift"}]}, headers=me), 422)
    assert_error(await svc.client.post("/orders", json={"lines": [{"kind": "course_seat"}]}, headers=me), 400)
    assert_error(await svc.client.post("/orders", json={"lines": [{"kind": "dues", "quantity": 2}]}, headers=me), 400)
    assert_error(
        await svc.client.post("/orders", json={"lines": [{"kind": "dues", "reference": "m2"}]}, headers=me), 400
    )
    assert_error(
        await svc.client.post(
            "/orders", json={"lines": [{"kind": "exam_fee", "reference": "BPI", "beneficiary_id": "m2"}]}, headers=me
        ),
        400,
    )
    assert_error(await svc.client.get("/orders/nope", headers=me), 404)
    order = (await svc.client.post("/orders", json={"lines": [{"kind": "dues"}]}, headers=me)).json()
    pay = f"/orders/{order['order_id']}/pay"
    assert_error(
        await svc.client.post(pay, json={"card": {**GOOD_CARD, "number": "4242424242424241"}}, headers=me), 400
    )
    assert_error(await svc.client.post(pay, json={"card": {**GOOD_CARD, "exp_month": 13}}, headers=me), 422)
    assert_error(await svc.client.post(pay, json={"card": {**GOOD_CARD, "cvc": "12a"}}, headers=me), 400)
    assert_error(await svc.client.post(pay, json={}, headers=me), 422)
    assert_error(await svc.client.post(pay, json={"card": {**GOOD_CARD, "exp_year": 2025}}, headers=me), 402)
    assert_error(await svc.client.post("/orders/nope/pay", json={"card": GOOD_CARD}, headers=me), 404)
    staff = svc.staff()
    assert_error(await svc.client.post("/invoices/issue", params={"month": "2026-13"}, headers=staff), 400)
    assert_error(await svc.client.post("/invoices/issue", headers=staff), 422)
    bad_po = {"number": "X", "limit_cents": 100, "valid_from": "2026-05-01", "valid_until": "2026-04-01"}
    assert_error(await svc.client.post("/companies/acme/purchase-orders", json=bad_po, headers=staff), 400)
    assert_error(
        await svc.client.post("/companies/acme/purchase-orders", json={**bad_po, "limit_cents": 0}, headers=staff), 422
    )
    assert_error(await svc.client.post("/purchase-orders/nope/charges", json={"order_id": "x"}, headers=staff), 404)
    assert_error(await svc.client.get("/purchase-orders/nope", headers=staff), 404)
    # A member's own order cannot go on a company PO.
    po = (
        await svc.client.post(
            "/companies/acme/purchase-orders",
            json={**bad_po, "valid_until": "2026-12-31", "valid_from": "2026-01-01"},
            headers=staff,
        )
    ).json()
    refused = assert_error(
        await svc.client.post(
            f"/purchase-orders/{po['po_id']}/charges", json={"order_id": order["order_id"]}, headers=staff
        ),
        400,
    )
    assert "company" in refused["message"]


@pytest.mark.parametrize("limit", [2**63, 2**70, 2**31])
async def test_a_purchase_order_limit_past_the_column_is_refused(svc: Running, limit: int) -> None:
    """Fuzzing found `limit_cents` 2^63 or 2^70 answered 500 (the database's overflow)."""
    admin = svc.as_member("boss", "member", "company_admin", company_id="acme")
    body = {"number": "PO-9", "limit_cents": limit, "valid_from": "2026-03-01", "valid_until": "2026-12-31"}
    refused = assert_error(await svc.client.post("/companies/acme/purchase-orders", json=body, headers=admin), 422)
    assert "limit_cents" in refused["message"]
    body["limit_cents"] = 2**31 - 1  # the largest that fits is accepted
    assert (await svc.client.post("/companies/acme/purchase-orders", json=body, headers=admin)).status_code == 201
