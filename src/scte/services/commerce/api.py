"""The commerce service's REST API: orders and card payments, company purchase orders and their
charges, monthly invoices.

A member orders and pays for themselves; a company's admin orders for the company, manages its
purchase orders and reads its invoices; staff may do all of it and issue a month's invoices by hand.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, Strict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Publish, Schedule
from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.bus.scheduler import schedule as schedule_event
from scte.kit.app import ApiError, BadRequest, Context, DbSession, ErrorOut, ServiceContext
from scte.kit.auth import (
    CurrentPrincipal,
    Forbidden,
    Principal,
    ensure_company_admin,
    ensure_self_or_staff,
    require_role,
)
from scte.kit.bounds import IsoDate, StoredCents

from . import db
from .domain import ProductKind
from .handlers import (
    CardPayment,
    CardProcessor,
    EmbeddedCardProcessor,
    LineRequest,
    charge_purchase_order,
    create_purchase_order,
    get_order,
    get_purchase_order,
    issue_invoices,
    parse_month,
    pay_by_card,
    place,
)

__all__ = ["router"]

router = APIRouter(tags=["commerce"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Id = Annotated[str, Field(min_length=1, max_length=128)]


class PaymentRequired(ApiError):
    status_code = 402
    code = "payment_declined"


def outbox(ctx: ServiceContext, session: AsyncSession) -> Publish:
    async def publish(event: Event, *, topic: str) -> Envelope:
        return await ctx.publisher.publish(session, event, topic=topic)

    return publish


def scheduler(ctx: ServiceContext, session: AsyncSession) -> Schedule:
    async def schedule(
        event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
    ) -> Envelope:
        return await schedule_event(session, event, deliver_at=deliver_at, topic=topic, queue=queue, source=ctx.name)

    return schedule


def processor(ctx: ServiceContext) -> CardProcessor:
    found = ctx.extras.get("card_processor")
    return found if found is not None else EmbeddedCardProcessor()


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(Model):
    kind: ProductKind
    reference: Id | None = None
    """What is bought: a course id (seat), a program code (exam fee), a certification id (renewal
    fee); for dues the member (defaults to the buyer or the beneficiary)."""
    quantity: Annotated[int, Strict(), Field(ge=1, le=100)] = 1
    beneficiary_id: Id | None = None


class OrderIn(Model):
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=50)]
    company_id: Id | None = None
    """Set when a company's admin buys for the company (for its employees)."""


class LineOut(BaseModel):
    kind: str
    reference: str
    quantity: int
    unit_price_cents: int
    beneficiary_id: str | None


class OrderOut(BaseModel):
    order_id: str
    member_id: str | None
    company_id: str | None
    status: str
    currency: str
    total_cents: int
    payment_method: str | None
    paid_at: datetime | None
    lines: list[LineOut]


class CardIn(Model):
    number: Annotated[str, Field(min_length=12, max_length=19)]
    exp_month: Annotated[int, Strict(), Field(ge=1, le=12)]
    exp_year: Annotated[int, Strict(), Field(ge=2000, le=2100)]
    cvc: Annotated[str, Field(min_length=3, max_length=4)]


class PayIn(Model):
    card: CardIn


class PurchaseOrderIn(Model):
    number: Annotated[str, Field(min_length=1, max_length=64)]
    limit_cents: StoredCents
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    valid_from: IsoDate
    valid_until: IsoDate


class PurchaseOrderOut(BaseModel):
    po_id: str
    company_id: str
    number: str
    limit_cents: int
    charged_cents: int
    remaining_cents: int
    currency: str
    valid_from: date
    valid_until: date


class ChargeIn(Model):
    order_id: Id


class ChargeOut(BaseModel):
    charge_id: str
    po_id: str
    po_number: str
    company_id: str
    order_id: str
    amount_cents: int
    currency: str
    remaining_cents: int
    charged_at: datetime


class InvoiceOut(BaseModel):
    invoice_id: str
    company_id: str
    month: str
    currency: str
    total_cents: int
    charge_count: int
    issued_on: date
    due_on: date
    charges: list[dict[str, Any]] = []


def _order_out(raw: dict[str, Any]) -> OrderOut:
    row = raw["row"]
    return OrderOut(
        order_id=row["order_id"],
        member_id=row["member_id"],
        company_id=row["company_id"],
        status=row["status"],
        currency=row["currency"],
        total_cents=row["total_cents"],
        payment_method=row["payment_method"],
        paid_at=row["paid_at"],
        lines=[LineOut.model_validate(line) for line in sorted(raw["lines"], key=lambda line: line["position"])],
    )


def _po_out(row: dict[str, Any]) -> PurchaseOrderOut:
    return PurchaseOrderOut(
        **{k: row[k] for k in PurchaseOrderOut.model_fields if k != "remaining_cents"},
        remaining_cents=row["limit_cents"] - row["charged_cents"],
    )


def _ensure_order_access(principal: Principal, row: dict[str, Any]) -> None:
    if principal.is_staff:
        return
    if row["company_id"] is not None:
        ensure_company_admin(principal, row["company_id"])
        return
    if row["member_id"] != principal.member_id:
        raise Forbidden("you may only see and pay your own orders")


# --- orders and payments ---------------------------------------------------------------------------


@router.post("/orders", status_code=201, summary="Place an order (a member for themselves, an admin for the company)")
async def post_order(body: OrderIn, principal: CurrentPrincipal, ctx: Context, session: DbSession) -> OrderOut:
    member_id: str | None = principal.member_id
    if body.company_id is not None:
        ensure_company_admin(principal, body.company_id)
        member_id = None
    lines: list[LineRequest] = []
    for line in body.lines:
        reference = line.reference
        if line.kind is ProductKind.DUES:
            reference = reference or line.beneficiary_id or member_id
        if reference is None:
            raise BadRequest(f"a {line.kind.value} line needs a reference (what is bought)")
        lines.append(LineRequest(line.kind, reference, line.quantity, line.beneficiary_id))
    async with session.begin():
        order = await place(
            session,
            member_id=member_id,
            company_id=body.company_id,
            lines=lines,
            created_by=principal.member_id,
            now=ctx.clock.now(),
        )
        _, raw = await get_order(session, order.order_id)
    return _order_out(raw)


@router.get("/orders/{order_id}", summary="One order (its buyer, the company's admin, staff)")
async def read_order(order_id: IdPath, principal: CurrentPrincipal, session: DbSession) -> OrderOut:
    _, raw = await get_order(session, order_id)
    _ensure_order_access(principal, raw["row"])
    return _order_out(raw)


@router.get("/members/{member_id}/orders", summary="A member's orders (self or staff)")
async def member_orders(member_id: IdPath, principal: CurrentPrincipal, session: DbSession) -> list[OrderOut]:
    ensure_self_or_staff(principal, member_id)
    ids = (
        await session.scalars(
            select(db.orders.c.order_id).where(db.orders.c.member_id == member_id).order_by(db.orders.c.created_at)
        )
    ).all()
    return [_order_out((await get_order(session, i))[1]) for i in ids]


@router.post(
    "/orders/{order_id}/pay",
    summary="Pay an order by card (402 when declined)",
    responses={402: {"model": ErrorOut, "description": "The card was declined"}},
)
async def pay(order_id: IdPath, body: PayIn, principal: CurrentPrincipal, ctx: Context, session: DbSession) -> OrderOut:
    card = CardPayment(body.card.number.replace(" ", ""), body.card.exp_month, body.card.exp_year, body.card.cvc)
    async with session.begin():
        _, raw = await get_order(session, order_id)
        _ensure_order_access(principal, raw["row"])
        _, result = await pay_by_card(
            session, outbox(ctx, session), processor(ctx), order_id=order_id, card=card, now=ctx.clock.now()
        )
    if not result.approved:
        raise PaymentRequired(f"the payment was declined: {result.reason}")
    _, raw = await get_order(session, order_id)
    return _order_out(raw)


# --- purchase orders --------------------------------------------------------------------------------


@router.post("/companies/{company_id}/purchase-orders", status_code=201, summary="Open a purchase order (its admin)")
async def post_purchase_order(
    company_id: IdPath, body: PurchaseOrderIn, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> PurchaseOrderOut:
    ensure_company_admin(principal, company_id)
    async with session.begin():
        values = await create_purchase_order(
            session,
            company_id=company_id,
            number=body.number,
            limit_cents=body.limit_cents,
            currency=body.currency,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            now=ctx.clock.now(),
        )
    return _po_out(values)


@router.get("/companies/{company_id}/purchase-orders", summary="A company's purchase orders (its admin, staff)")
async def company_purchase_orders(
    company_id: IdPath, principal: CurrentPrincipal, session: DbSession
) -> list[PurchaseOrderOut]:
    ensure_company_admin(principal, company_id)
    rows = (
        await session.execute(
            select(db.purchase_orders)
            .where(db.purchase_orders.c.company_id == company_id)
            .order_by(db.purchase_orders.c.created_at)
        )
    ).mappings()
    return [_po_out(dict(r)) for r in rows]


@router.get("/purchase-orders/{po_id}", summary="One purchase order (its company's admin, staff)")
async def read_purchase_order(po_id: IdPath, principal: CurrentPrincipal, session: DbSession) -> PurchaseOrderOut:
    row = await get_purchase_order(session, po_id)
    ensure_company_admin(principal, str(row["company_id"]))
    return _po_out(row)


@router.post("/purchase-orders/{po_id}/charges", status_code=201, summary="Charge a company order to the PO")
async def post_charge(
    po_id: IdPath, body: ChargeIn, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> ChargeOut:
    async with session.begin():
        row = await get_purchase_order(session, po_id)
        ensure_company_admin(principal, str(row["company_id"]))
        charged = await charge_purchase_order(
            session,
            outbox(ctx, session),
            scheduler(ctx, session),
            po_id=po_id,
            order_id=body.order_id,
            now=ctx.clock.now(),
        )
    return ChargeOut.model_validate(charged.model_dump())


# --- invoices ---------------------------------------------------------------------------------------


async def _invoices(session: AsyncSession, *conditions: Any) -> list[InvoiceOut]:
    rows = (
        (await session.execute(select(db.invoices).where(*conditions).order_by(db.invoices.c.month))).mappings().all()
    )
    out = []
    for row in rows:
        charges = (
            await session.execute(
                select(db.po_charges)
                .join(db.invoice_charges, db.invoice_charges.c.charge_id == db.po_charges.c.charge_id)
                .where(db.invoice_charges.c.invoice_id == row["invoice_id"])
                .order_by(db.po_charges.c.charged_at)
            )
        ).mappings()
        out.append(InvoiceOut(**dict(row), charges=[dict(c) for c in charges]))
    return out


@router.post("/invoices/issue", summary="Issue a month's invoices now (staff); issuing again changes nothing")
async def issue(
    _: Staff,
    ctx: Context,
    session: DbSession,
    month: Annotated[str, Query(description="YYYY-MM", min_length=7, max_length=7)],
) -> list[InvoiceOut]:
    billing = parse_month(month)
    async with session.begin():
        await issue_invoices(session, outbox(ctx, session), billing, ctx.clock.today())
    return await _invoices(session, db.invoices.c.month == str(billing))


@router.get("/companies/{company_id}/invoices", summary="A company's monthly invoices (its admin, staff)")
async def company_invoices(company_id: IdPath, principal: CurrentPrincipal, session: DbSession) -> list[InvoiceOut]:
    ensure_company_admin(principal, company_id)
    return await _invoices(session, db.invoices.c.company_id == company_id)
