"""What the commerce service does: take orders, take payments through the card processor, charge
company purchase orders, and issue each company's monthly invoice.

Functions run in the caller's transaction with `publish` (its outbox) and, where a later run must be
asked for, `schedule`. The monthly invoicing is a private message (`InvoicingDue`) scheduled onto this
service's own queue by the first charge of a month, for 00:00 UTC on the 1st of the next month; a
staff member can issue a month by hand too, and issuing twice yields the same invoices.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish, Schedule
from scte.bus.contracts import Event, event
from scte.contracts import commerce as contracts

from . import db
from .domain import (
    DEFAULT_PRICES,
    BillingMonth,
    CommerceError,
    Invoice,
    Order,
    OrderLine,
    PaymentMethod,
    ProductKind,
    billing_month,
    charge_po,
    invoice_for_month,
    mark_failed,
    mark_paid,
    place_order,
)

__all__ = [
    "HANDLERS",
    "QUEUE_NAME",
    "TOPIC",
    "CardPayment",
    "CardProcessor",
    "CardResult",
    "Conflict",
    "EmbeddedCardProcessor",
    "InvoicingDue",
    "LineRequest",
    "NotFound",
    "PaymentDeclined",
    "charge_purchase_order",
    "create_purchase_order",
    "issue_invoices",
    "on_invoicing_due",
    "parse_month",
    "pay_by_card",
    "place",
]

TOPIC = "commerce"
QUEUE_NAME = "commerce"
log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such order, purchase order or invoice."""


class Conflict(CommerceError):
    """Valid, but the records' state refuses it (already paid...)."""


class PaymentDeclined(CommerceError):
    """The card processor declined; the order stays unpaid and payment.failed was published."""


@event
class InvoicingDue(Event):
    """A month has ended: issue its invoices (private: scheduled onto this service's own queue)."""

    event_type: ClassVar[str] = "commerce.invoicing_due.v1"

    month: str
    """YYYY-MM"""

    def subject(self) -> str | None:
        return f"invoicing-{self.month}"


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> BillingMonth:
    match = _MONTH.fullmatch(text)
    if match is None:
        raise CommerceError(f"month must be YYYY-MM, got {text!r}")
    return BillingMonth(int(match[1]), int(match[2]))


# --- the card processor (a provider adapter) -------------------------------------------------------


@dataclass(frozen=True)
class CardPayment:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True)
class CardResult:
    approved: bool
    provider_reference: str
    reason: str | None = None


class CardProcessor(Protocol):
    """The port to a card processor; production puts a real provider behind it."""

    name: str

    async def charge(self, card: CardPayment, amount_cents: int, currency: str, *, today: date) -> CardResult: ...


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


class EmbeddedCardProcessor:
    """The processor of embedded mode: no money moves, every answer is recorded by the caller.

    It answers like a card network's test mode: well-formed cards are approved, except the test
    numbers that are declined (`4000000000000002`: declined; `4000000000009995`: insufficient funds)
    and expired cards.
    """

    name = "embedded"
    DECLINES: ClassVar[dict[str, str]] = {
        "4000000000000002": "card declined",
        "4000000000009995": "insufficient funds",
    }

    async def charge(self, card: CardPayment, amount_cents: int, currency: str, *, today: date) -> CardResult:
        reference = f"emb_{uuid.uuid4().hex[:16]}"
        if card.number in self.DECLINES:
            return CardResult(False, reference, self.DECLINES[card.number])
        if (card.exp_year, card.exp_month) < (today.year, today.month):
            return CardResult(False, reference, "card expired")
        return CardResult(True, reference)


def validate_card(card: CardPayment) -> None:
    """Refuse what no processor would take (a 400, not a decline)."""
    if not card.number.isdigit() or not 12 <= len(card.number) <= 19 or not luhn_ok(card.number):
        raise CommerceError("the card number is not valid")
    if not 1 <= card.exp_month <= 12:
        raise CommerceError("the card's expiry month is between 1 and 12")
    if not card.cvc.isdigit() or len(card.cvc) not in (3, 4):
        raise CommerceError("the card's security code is 3 or 4 digits")


# --- orders ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    kind: ProductKind
    reference: str
    quantity: int = 1
    beneficiary_id: str | None = None


async def get_order(session: AsyncSession, order_id: str, *, for_update: bool = False) -> tuple[Order, dict[str, Any]]:
    query = select(db.orders).where(db.orders.c.order_id == order_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound(f"no order {order_id}")
    lines = (
        (await session.execute(select(db.order_lines).where(db.order_lines.c.order_id == order_id))).mappings().all()
    )
    return db.to_order(row, lines), {"row": dict(row), "lines": [dict(line) for line in lines]}


async def place(
    session: AsyncSession,
    *,
    member_id: str | None,
    company_id: str | None,
    lines: Sequence[LineRequest],
    created_by: str,
    now: datetime,
    currency: str = "USD",
) -> Order:
    """An order at the configured prices (the buyer never sets a price)."""
    for line in lines:
        if line.kind is ProductKind.DUES and line.reference != (line.beneficiary_id or member_id):
            raise CommerceError("dues are paid for a member: the line's reference is that member's id")
        if company_id is None and line.beneficiary_id not in (None, member_id):
            raise CommerceError("a member buys for themselves; a company buys for its employees")
    order = place_order(
        uuid.uuid4().hex,
        member_id,
        company_id,
        [OrderLine(line.kind, line.reference, DEFAULT_PRICES[line.kind], line.quantity) for line in lines],
        currency,
    )
    await session.execute(
        insert(db.orders).values(
            order_id=order.order_id,
            member_id=member_id,
            company_id=company_id,
            currency=order.currency,
            total_cents=order.total_cents,
            status=order.status.value,
            created_by=created_by,
            created_at=now,
        )
    )
    await session.execute(
        insert(db.order_lines),
        [
            {
                "order_id": order.order_id,
                "position": position,
                "kind": line.kind.value,
                "reference": line.reference,
                "quantity": line.quantity,
                "unit_price_cents": DEFAULT_PRICES[line.kind],
                "beneficiary_id": request.beneficiary_id,
            }
            for position, (line, request) in enumerate(zip(order.lines, lines, strict=True))
        ],
    )
    return order


def _paid_event(order: Order, raw: dict[str, Any], paid_at: datetime) -> contracts.OrderPaid:
    lines = raw["lines"]
    assert isinstance(lines, list)
    return contracts.OrderPaid(
        order_id=order.order_id,
        member_id=order.member_id,
        company_id=order.company_id,
        lines=tuple(
            contracts.OrderLine(
                kind=line["kind"],
                reference=line["reference"],
                quantity=line["quantity"],
                unit_price_cents=line["unit_price_cents"],
                beneficiary_id=line["beneficiary_id"],
            )
            for line in sorted(lines, key=lambda line: line["position"])
        ),
        total_cents=order.total_cents,
        currency=order.currency,
        payment_method=order.payment_method.value if order.payment_method else "card",
        paid_at=paid_at,
    )


async def _record_paid(session: AsyncSession, order: Order) -> None:
    await session.execute(
        update(db.orders)
        .where(db.orders.c.order_id == order.order_id)
        .values(
            status=order.status.value,
            paid_at=order.paid_at,
            payment_method=order.payment_method.value if order.payment_method else None,
        )
    )


async def pay_by_card(
    session: AsyncSession,
    publish: Publish,
    processor: CardProcessor,
    *,
    order_id: str,
    card: CardPayment,
    now: datetime,
) -> tuple[Order, CardResult]:
    """Charge the order's total to a card. Approved: order.paid. Declined: payment.failed, and the
    order may be paid by another attempt. Both answers are recorded in `payments`."""
    validate_card(card)
    order, raw = await get_order(session, order_id, for_update=True)
    if order.status.value == "paid":
        raise Conflict(f"order {order_id} is already paid")
    result = await processor.charge(card, order.total_cents, order.currency, today=now.date())
    await session.execute(
        insert(db.payments).values(
            payment_id=uuid.uuid4().hex,
            order_id=order_id,
            provider=processor.name,
            provider_reference=result.provider_reference,
            amount_cents=order.total_cents,
            currency=order.currency,
            outcome="succeeded" if result.approved else "declined",
            reason=result.reason,
            card_last4=card.number[-4:],
            created_at=now,
        )
    )
    if not result.approved:
        failed = mark_failed(order)
        await session.execute(
            update(db.orders).where(db.orders.c.order_id == order_id).values(status=failed.status.value)
        )
        await publish(
            contracts.PaymentFailed(
                order_id=order_id,
                member_id=order.member_id,
                company_id=order.company_id,
                amount_cents=order.total_cents,
                currency=order.currency,
                reason=result.reason or "declined",
                failed_at=now,
            ),
            topic=TOPIC,
        )
        return failed, result
    paid = mark_paid(order, order.total_cents, order.currency, PaymentMethod.CARD, now)
    await _record_paid(session, paid)
    await publish(_paid_event(paid, raw, now), topic=TOPIC)
    return paid, result


# --- purchase orders -------------------------------------------------------------------------------


async def create_purchase_order(
    session: AsyncSession,
    *,
    company_id: str,
    number: str,
    limit_cents: int,
    currency: str,
    valid_from: date,
    valid_until: date,
    now: datetime,
) -> dict[str, object]:
    if not number.strip():
        raise CommerceError("a purchase order has a number")
    if limit_cents <= 0:
        raise CommerceError("a purchase order's limit is more than zero")
    if valid_until < valid_from:
        raise CommerceError("a purchase order's validity ends on or after it starts")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise CommerceError(f"{currency!r} is not an ISO 4217 currency code")
    clash = await session.scalar(
        select(db.purchase_orders.c.po_id).where(
            db.purchase_orders.c.company_id == company_id, db.purchase_orders.c.number == number.strip()
        )
    )
    if clash is not None:
        raise Conflict(f"company {company_id} already has purchase order {number.strip()}")
    values = {
        "po_id": uuid.uuid4().hex,
        "company_id": company_id,
        "number": number.strip(),
        "limit_cents": limit_cents,
        "charged_cents": 0,
        "currency": currency,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "created_at": now,
    }
    await session.execute(insert(db.purchase_orders).values(**values))
    return values


async def get_purchase_order(session: AsyncSession, po_id: str, *, for_update: bool = False) -> dict[str, object]:
    query = select(db.purchase_orders).where(db.purchase_orders.c.po_id == po_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound(f"no purchase order {po_id}")
    return dict(row)


def first_of_next_month(month: BillingMonth) -> datetime:
    return datetime.combine(month.issue_on, time(0), UTC)


async def charge_purchase_order(
    session: AsyncSession,
    publish: Publish,
    schedule: Schedule,
    *,
    po_id: str,
    order_id: str,
    now: datetime,
) -> contracts.PoCharged:
    """Pay a company's order against its PO, at once and within the limit: po.charged and order.paid.
    The first charge of a month asks the scheduler for that month's invoicing run."""
    po_row = await get_purchase_order(session, po_id, for_update=True)
    po = db.to_purchase_order(po_row)
    order, raw = await get_order(session, order_id, for_update=True)
    if order.status.value == "paid":
        raise Conflict(f"order {order_id} is already paid")
    new_po, charge = charge_po(po, order, uuid.uuid4().hex, now)
    paid = mark_paid(order, order.total_cents, order.currency, PaymentMethod.PURCHASE_ORDER, now)
    month = billing_month(charge.charged_at)
    await session.execute(
        update(db.purchase_orders).where(db.purchase_orders.c.po_id == po_id).values(charged_cents=new_po.charged_cents)
    )
    await session.execute(
        insert(db.po_charges).values(
            charge_id=charge.charge_id,
            po_id=po_id,
            company_id=charge.company_id,
            order_id=order_id,
            amount_cents=charge.amount_cents,
            currency=charge.currency,
            charged_at=charge.charged_at,
            month=str(month),
        )
    )
    await _record_paid(session, paid)
    charged = contracts.PoCharged(
        charge_id=charge.charge_id,
        po_id=po_id,
        po_number=po.number,
        company_id=po.company_id,
        order_id=order_id,
        amount_cents=charge.amount_cents,
        currency=charge.currency,
        remaining_cents=new_po.remaining_cents,
        charged_at=charge.charged_at,
    )
    await publish(charged, topic=TOPIC)
    await publish(_paid_event(paid, raw, now), topic=TOPIC)
    await ensure_invoicing_scheduled(session, schedule, month)
    return charged


async def ensure_invoicing_scheduled(session: AsyncSession, schedule: Schedule, month: BillingMonth) -> None:
    known = await session.scalar(select(db.invoice_runs.c.month).where(db.invoice_runs.c.month == str(month)))
    if known is not None:
        return
    at = first_of_next_month(month)
    await session.execute(insert(db.invoice_runs).values(month=str(month), scheduled_for=at))
    await schedule(InvoicingDue(month=str(month)), deliver_at=at, queue=QUEUE_NAME)


# --- invoices --------------------------------------------------------------------------------------


async def issue_invoices(session: AsyncSession, publish: Publish, month: BillingMonth, today: date) -> list[Invoice]:
    """Issue `month`'s invoice of every company charged in it; an invoice issued before is returned as
    it was, not issued again (`invoice.issued` once per company and month)."""
    if today < month.issue_on:
        raise CommerceError(f"the invoices for {month} can be issued from {month.issue_on}")
    rows = (await session.execute(select(db.po_charges).where(db.po_charges.c.month == str(month)))).mappings().all()
    charges = [db.to_charge(r) for r in rows]
    issued: list[Invoice] = []
    for company_id in sorted({c.company_id for c in charges}):
        invoice = invoice_for_month(company_id, month, charges, today)
        if invoice is None:
            continue
        exists = await session.scalar(
            select(db.invoices.c.invoice_id).where(db.invoices.c.invoice_id == invoice.invoice_id)
        )
        if exists is not None:
            continue
        await session.execute(
            insert(db.invoices).values(
                invoice_id=invoice.invoice_id,
                company_id=company_id,
                month=str(month),
                currency=invoice.currency,
                total_cents=invoice.total_cents,
                charge_count=len(invoice.charges),
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
            )
        )
        await session.execute(
            insert(db.invoice_charges),
            [{"invoice_id": invoice.invoice_id, "charge_id": c.charge_id} for c in invoice.charges],
        )
        await publish(
            contracts.InvoiceIssued(
                invoice_id=invoice.invoice_id,
                company_id=company_id,
                period_start=month.first_day,
                period_end=month.last_day,
                charge_count=len(invoice.charges),
                total_cents=invoice.total_cents,
                currency=invoice.currency,
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
            ),
            topic=TOPIC,
        )
        issued.append(invoice)
    await session.execute(
        update(db.invoice_runs).where(db.invoice_runs.c.month == str(month)).values(completed_at=datetime.now(UTC))
    )
    return issued


async def on_invoicing_due(event: InvoicingDue, session: AsyncSession, publish: Publish) -> None:
    """The scheduled run on the 1st: issue last month's invoices, dated on the day the run was due."""
    month = parse_month(event.month)
    await issue_invoices(session, publish, month, month.issue_on)


HANDLERS: dict[str | type[Event], Handler] = {InvoicingDue.event_type: on_invoicing_due}
"""Commerce reacts to no other service; it only receives its own scheduled invoicing runs."""
