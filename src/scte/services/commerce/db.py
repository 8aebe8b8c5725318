"""The commerce service's tables: orders and their lines, payments, purchase orders and their charges,
monthly invoices, and the invoicing runs the scheduler has been asked for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

from .domain import Order, OrderLine, OrderStatus, PaymentMethod, PoCharge, ProductKind, PurchaseOrder

__all__ = [
    "invoice_charges",
    "invoice_runs",
    "invoices",
    "metadata",
    "order_lines",
    "orders",
    "payments",
    "po_charges",
    "purchase_orders",
]

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("member_id", String(128), nullable=True),
    Column("company_id", String(128), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_method", String(32), nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("paid_at", UtcDateTime, nullable=True),
    Index("ix_orders_member", "member_id"),
    Index("ix_orders_company", "company_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(128), ForeignKey("orders.order_id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", Integer, nullable=False),
    Column("beneficiary_id", String(128), nullable=True),
    PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(128), primary_key=True),
    Column("order_id", String(128), ForeignKey("orders.order_id"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_reference", String(128), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("outcome", String(16), nullable=False, comment="succeeded | declined"),
    Column("reason", Text, nullable=True),
    Column("card_last4", String(4), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_payments_order", "order_id"),
)
"""Every attempt the card processor answered, accepted or declined (the provider adapter's record)."""

purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("po_id", String(128), primary_key=True),
    Column("company_id", String(128), nullable=False),
    Column("number", String(64), nullable=False),
    Column("limit_cents", Integer, nullable=False),
    Column("charged_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_purchase_orders_company", "company_id"),
)

po_charges = Table(
    "po_charges",
    metadata,
    Column("charge_id", String(128), primary_key=True),
    Column("po_id", String(128), ForeignKey("purchase_orders.po_id"), nullable=False),
    Column("company_id", String(128), nullable=False),
    Column("order_id", String(128), ForeignKey("orders.order_id"), nullable=False, unique=True),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("charged_at", UtcDateTime, nullable=False),
    Column("month", String(7), nullable=False, comment="YYYY-MM (UTC)"),
    Index("ix_po_charges_company_month", "company_id", "month"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", String(200), primary_key=True),
    Column("company_id", String(128), nullable=False),
    Column("month", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("charge_count", Integer, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Index("ix_invoices_company", "company_id", "month"),
)

invoice_charges = Table(
    "invoice_charges",
    metadata,
    Column("invoice_id", String(200), ForeignKey("invoices.invoice_id"), nullable=False),
    Column("charge_id", String(128), ForeignKey("po_charges.charge_id"), nullable=False, unique=True),
    PrimaryKeyConstraint("invoice_id", "charge_id", name="pk_invoice_charges"),
)

invoice_runs = Table(
    "invoice_runs",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("scheduled_for", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
)
"""One scheduled invoicing run per month that had charges (asked for by its first charge)."""

include_in(metadata)
include_revocations(metadata)


def to_order(row: Mapping[Any, Any], lines: Sequence[Mapping[Any, Any]]) -> Order:
    return Order(
        order_id=row["order_id"],
        member_id=row["member_id"],
        company_id=row["company_id"],
        lines=tuple(
            OrderLine(ProductKind(line["kind"]), line["reference"], line["unit_price_cents"], line["quantity"])
            for line in sorted(lines, key=lambda line: line["position"])
        ),
        currency=row["currency"],
        status=OrderStatus(row["status"]),
        paid_at=row["paid_at"],
        payment_method=PaymentMethod(row["payment_method"]) if row["payment_method"] else None,
    )


def to_purchase_order(row: Mapping[Any, Any]) -> PurchaseOrder:
    return PurchaseOrder(
        po_id=row["po_id"],
        company_id=row["company_id"],
        number=row["number"],
        limit_cents=row["limit_cents"],
        currency=row["currency"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        charged_cents=row["charged_cents"],
    )


def to_charge(row: Mapping[Any, Any]) -> PoCharge:
    return PoCharge(
        charge_id=row["charge_id"],
        po_id=row["po_id"],
        company_id=row["company_id"],
        order_id=row["order_id"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        charged_at=row["charged_at"],
    )
