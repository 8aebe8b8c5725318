"""Commerce rules: orders and their prices, payments, company purchase orders, monthly invoices.

Money is integer cents with a currency; nothing here uses floats. A company buys against a purchase
order (PO): each purchase is charged to the PO at once (within its limit and validity), and the
company is invoiced once a month, in arrears, for the charges of that calendar month. Months are
calendar months in UTC: a charge at 23:30 on 31 January in New York (04:30 UTC on 1 February) is on
February's invoice.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

__all__ = [
    "DEFAULT_PRICES",
    "INVOICE_PAYMENT_TERMS",
    "BillingMonth",
    "CommerceError",
    "Invoice",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PaymentMethod",
    "PoCharge",
    "ProductKind",
    "PurchaseOrder",
    "billing_month",
    "charge_po",
    "invoice_for_month",
    "mark_failed",
    "mark_paid",
    "place_order",
]

INVOICE_PAYMENT_TERMS = timedelta(days=30)
"""Net 30: an invoice is due thirty days after it is issued."""


class CommerceError(ValueError):
    """A purchase, payment or charge the rules refuse."""


def _require_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise CommerceError(f"{what} must carry a time zone")
    return moment.astimezone(UTC)


class ProductKind(StrEnum):
    DUES = "dues"
    EXAM_FEE = "exam_fee"
    COURSE_SEAT = "course_seat"
    RENEWAL_FEE = "renewal_fee"


DEFAULT_PRICES: Mapping[ProductKind, int] = {
    ProductKind.DUES: 8_500,
    ProductKind.EXAM_FEE: 9_500,
    ProductKind.COURSE_SEAT: 19_500,
    ProductKind.RENEWAL_FEE: 5_000,
}
"""Demonstration prices in US cents. Real prices are configuration (and differ per course), not
rules; these only make a fresh system usable."""


class PaymentMethod(StrEnum):
    CARD = "card"
    PURCHASE_ORDER = "purchase_order"


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    """The last payment attempt was declined; another attempt may still pay the order."""


@dataclass(frozen=True)
class OrderLine:
    kind: ProductKind
    reference: str
    unit_price_cents: int
    quantity: int = 1

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class Order:
    order_id: str
    member_id: str | None
    company_id: str | None
    lines: tuple[OrderLine, ...]
    currency: str
    status: OrderStatus = OrderStatus.PENDING
    paid_at: datetime | None = None
    payment_method: PaymentMethod | None = None

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)


def place_order(
    order_id: str, member_id: str | None, company_id: str | None, lines: Iterable[OrderLine], currency: str = "USD"
) -> Order:
    """An order to pay. A member buys for themselves, a company for its employees; one is needed."""
    items = tuple(lines)
    if member_id is None and company_id is None:
        raise CommerceError("an order has a buyer: a member or a company")
    if not items:
        raise CommerceError("an order has at least one line")
    for line in items:
        if line.quantity < 1:
            raise CommerceError("a line's quantity is at least 1")
        if line.unit_price_cents < 0:
            raise CommerceError("a price cannot be negative")
    if any(line.kind is ProductKind.DUES and line.quantity != 1 for line in items):
        raise CommerceError("dues are paid one year at a time (quantity 1)")
    if len(currency) != 3 or not currency.isupper():
        raise CommerceError(f"{currency!r} is not an ISO 4217 currency code")
    return Order(order_id, member_id, company_id, items, currency)


def mark_paid(order: Order, amount_cents: int, currency: str, method: PaymentMethod, paid_at: datetime) -> Order:
    """Record a payment. Only the exact total in the order's currency pays it, and only once."""
    if order.status is OrderStatus.PAID:
        raise CommerceError(f"order {order.order_id} is already paid")
    if currency != order.currency or amount_cents != order.total_cents:
        raise CommerceError(
            f"payment of {amount_cents} {currency} does not match the order total {order.total_cents} {order.currency}"
        )
    if method is PaymentMethod.PURCHASE_ORDER and order.company_id is None:
        raise CommerceError("only a company can pay with a purchase order")
    return replace(order, status=OrderStatus.PAID, paid_at=_require_utc(paid_at, "paid_at"), payment_method=method)


def mark_failed(order: Order) -> Order:
    if order.status is OrderStatus.PAID:
        raise CommerceError(f"order {order.order_id} is already paid")
    return replace(order, status=OrderStatus.FAILED)


# --- purchase orders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseOrder:
    """A company's PO: purchases are charged to it up to `limit_cents`, between its validity days
    (both inclusive, in UTC)."""

    po_id: str
    company_id: str
    number: str
    limit_cents: int
    currency: str
    valid_from: date
    valid_until: date
    charged_cents: int = 0

    @property
    def remaining_cents(self) -> int:
        return self.limit_cents - self.charged_cents


@dataclass(frozen=True)
class PoCharge:
    charge_id: str
    po_id: str
    company_id: str
    order_id: str
    amount_cents: int
    currency: str
    charged_at: datetime


def charge_po(po: PurchaseOrder, order: Order, charge_id: str, at: datetime) -> tuple[PurchaseOrder, PoCharge]:
    """Charge one purchase to a PO, at once (not at month end), so the limit is enforced per
    purchase and the company sees the remaining balance immediately."""
    when = _require_utc(at, "charged_at")
    if order.company_id != po.company_id:
        raise CommerceError("the order is not the PO's company's")
    if order.currency != po.currency:
        raise CommerceError(f"the PO is in {po.currency}, the order in {order.currency}")
    if not po.valid_from <= when.date() <= po.valid_until:
        raise CommerceError(f"PO {po.number} is valid from {po.valid_from} to {po.valid_until}")
    if order.total_cents > po.remaining_cents:
        raise CommerceError(f"PO {po.number} has {po.remaining_cents} cents left, the order needs {order.total_cents}")
    charge = PoCharge(charge_id, po.po_id, po.company_id, order.order_id, order.total_cents, po.currency, when)
    return replace(po, charged_cents=po.charged_cents + order.total_cents), charge


# --- monthly invoices ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class BillingMonth:
    year: int
    month: int

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def issue_on(self) -> date:
        """Invoices are issued on the first day of the following month, once the month is closed."""
        return self.last_day + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def billing_month(at: datetime) -> BillingMonth:
    """The calendar month (UTC) a charge belongs to."""
    utc = _require_utc(at, "charged_at")
    return BillingMonth(utc.year, utc.month)


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    company_id: str
    month: BillingMonth
    charges: tuple[PoCharge, ...]
    currency: str
    issued_on: date
    due_on: date

    @property
    def total_cents(self) -> int:
        return sum(c.amount_cents for c in self.charges)


def invoice_for_month(company_id: str, month: BillingMonth, charges: Iterable[PoCharge], today: date) -> Invoice | None:
    """The company's invoice for `month`, or None when the month had no charges.

    Refused before the month has ended (a later charge would be missed). The invoice id is derived
    from company and month, so issuing twice yields the same invoice, never a second one.
    """
    if today < month.issue_on:
        raise CommerceError(f"the invoice for {month} can be issued from {month.issue_on}")
    own = tuple(
        sorted(
            (c for c in charges if c.company_id == company_id and billing_month(c.charged_at) == month),
            key=lambda c: (c.charged_at, c.charge_id),
        )
    )
    if not own:
        return None
    currencies = {c.currency for c in own}
    if len(currencies) > 1:
        raise CommerceError(f"charges in several currencies for {company_id} in {month}: {sorted(currencies)}")
    return Invoice(
        invoice_id=f"INV-{company_id}-{month}",
        company_id=company_id,
        month=month,
        charges=own,
        currency=own[0].currency,
        issued_on=today,
        due_on=today + INVOICE_PAYMENT_TERMS,
    )
