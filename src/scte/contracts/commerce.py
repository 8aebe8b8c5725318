"""Events published by the commerce service: orders, payments, purchase-order charges, invoices.

Orders and payments have the order as subject. Purchase-order charges and invoices have the company
as subject, so a month's charges reach a consumer before the invoice that sums them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from scte.bus.contracts import Event, event

from ._types import Cents, Currency, Id, UtcDatetime

__all__ = [
    "InvoiceIssued",
    "OrderLine",
    "OrderPaid",
    "PaymentFailed",
    "PaymentMethod",
    "PoCharged",
    "ProductKind",
]

ProductKind = Literal["dues", "exam_fee", "course_seat", "renewal_fee"]
"""What SCTE sells."""

PaymentMethod = Literal["card", "purchase_order"]


class OrderLine(BaseModel):
    """One line of an order. `reference` names what was bought: a course id, a program code, a
    certification id (renewal fee), the member id (dues)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ProductKind
    reference: Id
    quantity: Annotated[int, Field(ge=1)] = 1
    unit_price_cents: Cents
    beneficiary_id: Id | None = None
    """The member the line is for, when a company buys for an employee."""


@event
class OrderPaid(Event):
    """An order was paid in full, by card or against a company purchase order."""

    event_type: ClassVar[str] = "order.paid.v1"

    order_id: Id
    member_id: Id | None
    company_id: Id | None = None
    lines: tuple[OrderLine, ...]
    total_cents: Cents
    currency: Currency
    payment_method: PaymentMethod
    paid_at: UtcDatetime

    def subject(self) -> str | None:
        return self.order_id


@event
class PaymentFailed(Event):
    """A payment attempt for an order was declined; the order stays unpaid."""

    event_type: ClassVar[str] = "payment.failed.v1"

    order_id: Id
    member_id: Id | None
    company_id: Id | None = None
    amount_cents: Cents
    currency: Currency
    reason: str
    failed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.order_id


@event
class PoCharged(Event):
    """A purchase was charged to a company purchase order; it will appear on that month's invoice."""

    event_type: ClassVar[str] = "po.charged.v1"

    charge_id: Id
    po_id: Id
    po_number: str
    company_id: Id
    order_id: Id
    amount_cents: Cents
    currency: Currency
    remaining_cents: Cents
    charged_at: UtcDatetime

    def subject(self) -> str | None:
        return self.company_id


@event
class InvoiceIssued(Event):
    """A company's invoice for one calendar month (UTC) of purchase-order charges was issued."""

    event_type: ClassVar[str] = "invoice.issued.v1"

    invoice_id: Id
    company_id: Id
    period_start: date
    period_end: date
    """The last day of the month, inclusive."""
    charge_count: Annotated[int, Field(ge=1)]
    total_cents: Cents
    currency: Currency
    issued_on: date
    due_on: date

    def subject(self) -> str | None:
        return self.company_id
