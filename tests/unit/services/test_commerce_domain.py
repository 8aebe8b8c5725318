"""Commerce rules: orders in cents, exact payments, purchase-order charges per purchase, and one
invoice per company per calendar month (UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from scte.services.commerce.domain import (
    DEFAULT_PRICES,
    BillingMonth,
    CommerceError,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    PoCharge,
    ProductKind,
    PurchaseOrder,
    billing_month,
    charge_po,
    invoice_for_month,
    mark_failed,
    mark_paid,
    place_order,
)

NEW_YORK = timezone(timedelta(hours=-5))
TOKYO = timezone(timedelta(hours=9))
T0 = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)


def seat_order(order_id: str = "o-1", cents: int = 19_500, company: str | None = "co-1") -> Order:
    return place_order(
        order_id, None if company else "m-1", company, [OrderLine(ProductKind.COURSE_SEAT, "c-1", cents)]
    )


def po(**changes: object) -> PurchaseOrder:
    values: dict[str, object] = {
        "po_id": "po-1",
        "company_id": "co-1",
        "number": "PO-778",
        "limit_cents": 50_000,
        "currency": "USD",
        "valid_from": date(2025, 1, 1),
        "valid_until": date(2025, 12, 31),
    }
    values.update(changes)
    return PurchaseOrder(**values)  # type: ignore[arg-type]


# --- orders and payments ---------------------------------------------------------------------------


def test_every_product_has_a_price_in_cents() -> None:
    assert set(DEFAULT_PRICES) == set(ProductKind)
    assert all(isinstance(cents, int) and cents > 0 for cents in DEFAULT_PRICES.values())


def test_order_total_is_the_sum_of_its_lines() -> None:
    order = place_order(
        "o-1",
        "m-1",
        None,
        [OrderLine(ProductKind.EXAM_FEE, "BPI", 9_500), OrderLine(ProductKind.COURSE_SEAT, "c-1", 19_999, quantity=3)],
    )
    assert order.total_cents == 9_500 + 3 * 19_999
    assert order.status is OrderStatus.PENDING


@pytest.mark.parametrize(
    ("member", "company", "lines", "message"),
    [
        (None, None, [OrderLine(ProductKind.DUES, "m-1", 8_500)], "buyer"),
        ("m-1", None, [], "at least one line"),
        ("m-1", None, [OrderLine(ProductKind.EXAM_FEE, "BPI", 100, quantity=0)], "quantity"),
        ("m-1", None, [OrderLine(ProductKind.EXAM_FEE, "BPI", -1)], "negative"),
        ("m-1", None, [OrderLine(ProductKind.DUES, "m-1", 8_500, quantity=2)], "one year at a time"),
    ],
)
def test_invalid_orders_are_refused(
    member: str | None, company: str | None, lines: list[OrderLine], message: str
) -> None:
    with pytest.raises(CommerceError, match=message):
        place_order("o-1", member, company, lines)


def test_currency_must_be_an_iso_code() -> None:
    with pytest.raises(CommerceError):
        place_order("o", "m-1", None, [OrderLine(ProductKind.DUES, "m-1", 1)], currency="usd")


def test_an_exact_payment_pays_the_order_once() -> None:
    order = seat_order(company=None)
    paid = mark_paid(order, 19_500, "USD", PaymentMethod.CARD, datetime(2025, 3, 10, 10, 0, tzinfo=NEW_YORK))
    assert paid.status is OrderStatus.PAID
    assert paid.paid_at == datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
    with pytest.raises(CommerceError, match="already paid"):
        mark_paid(paid, 19_500, "USD", PaymentMethod.CARD, T0)
    with pytest.raises(CommerceError, match="already paid"):
        mark_failed(paid)


@pytest.mark.parametrize(("amount", "currency"), [(19_499, "USD"), (19_501, "USD"), (19_500, "EUR")])
def test_a_payment_that_does_not_match_the_total_is_refused(amount: int, currency: str) -> None:
    with pytest.raises(CommerceError, match="does not match"):
        mark_paid(seat_order(), amount, currency, PaymentMethod.CARD, T0)


def test_a_failed_payment_can_be_followed_by_a_good_one() -> None:
    failed = mark_failed(seat_order(company=None))
    assert failed.status is OrderStatus.FAILED
    assert mark_paid(failed, 19_500, "USD", PaymentMethod.CARD, T0).status is OrderStatus.PAID


def test_only_companies_pay_with_purchase_orders() -> None:
    with pytest.raises(CommerceError, match="company"):
        mark_paid(seat_order(company=None), 19_500, "USD", PaymentMethod.PURCHASE_ORDER, T0)
    assert mark_paid(seat_order(), 19_500, "USD", PaymentMethod.PURCHASE_ORDER, T0).payment_method is (
        PaymentMethod.PURCHASE_ORDER
    )


def test_payment_time_needs_a_zone() -> None:
    with pytest.raises(CommerceError, match="time zone"):
        mark_paid(seat_order(), 19_500, "USD", PaymentMethod.CARD, datetime(2025, 1, 1))


# --- purchase orders -------------------------------------------------------------------------------


def test_each_purchase_is_charged_to_the_po_at_once() -> None:
    first, charge = charge_po(po(), seat_order("o-1", 20_000), "ch-1", T0)
    assert (charge.amount_cents, charge.order_id, charge.company_id, charge.currency) == (20_000, "o-1", "co-1", "USD")
    assert first.remaining_cents == 30_000
    second, _ = charge_po(first, seat_order("o-2", 30_000), "ch-2", T0)
    assert second.remaining_cents == 0  # exactly the limit is allowed
    with pytest.raises(CommerceError, match="0 cents left"):
        charge_po(second, seat_order("o-3", 1), "ch-3", T0)


def test_a_charge_over_the_limit_is_refused() -> None:
    with pytest.raises(CommerceError, match="needs 50001"):
        charge_po(po(), seat_order(cents=50_001), "ch-1", T0)


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        (datetime(2025, 1, 1, 0, 0, tzinfo=UTC), True),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), False),
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), False),
        (datetime(2025, 12, 31, 20, 0, tzinfo=NEW_YORK), False),  # already 1 January in UTC
    ],
)
def test_a_po_is_valid_between_its_days_inclusive_in_utc(at: datetime, allowed: bool) -> None:
    if allowed:
        charge_po(po(), seat_order(), "ch-1", at)
    else:
        with pytest.raises(CommerceError, match="valid from"):
            charge_po(po(), seat_order(), "ch-1", at)


def test_a_po_only_pays_its_companys_orders_in_its_currency() -> None:
    with pytest.raises(CommerceError, match="company"):
        charge_po(po(), seat_order(company="co-2"), "ch-1", T0)
    eur = place_order("o-9", None, "co-1", [OrderLine(ProductKind.EXAM_FEE, "BPI", 100)], currency="EUR")
    with pytest.raises(CommerceError, match="EUR"):
        charge_po(po(), eur, "ch-1", T0)


# --- monthly invoices ------------------------------------------------------------------------------


def charge(charge_id: str, at: datetime, cents: int = 1_000, company: str = "co-1", currency: str = "USD") -> PoCharge:
    return PoCharge(charge_id, "po-1", company, f"o-{charge_id}", cents, currency, at)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2025, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC), BillingMonth(2025, 1)),
        (datetime(2025, 2, 1, 0, 0, tzinfo=UTC), BillingMonth(2025, 2)),
        (datetime(2025, 1, 31, 23, 30, tzinfo=NEW_YORK), BillingMonth(2025, 2)),  # 04:30 UTC on 1 Feb
        (datetime(2025, 2, 1, 8, 0, tzinfo=TOKYO), BillingMonth(2025, 1)),  # 23:00 UTC on 31 Jan
        (datetime(2024, 12, 31, 23, 59, tzinfo=UTC), BillingMonth(2024, 12)),
        (datetime(2024, 2, 29, 12, 0, tzinfo=UTC), BillingMonth(2024, 2)),
    ],
)
def test_a_charge_belongs_to_its_calendar_month_in_utc(at: datetime, expected: BillingMonth) -> None:
    assert billing_month(at) == expected


def test_billing_month_needs_a_zone() -> None:
    with pytest.raises(CommerceError):
        billing_month(datetime(2025, 1, 31, 23, 0))


def test_billing_month_days() -> None:
    assert (BillingMonth(2024, 2).first_day, BillingMonth(2024, 2).last_day) == (date(2024, 2, 1), date(2024, 2, 29))
    assert BillingMonth(2025, 2).last_day == date(2025, 2, 28)
    assert BillingMonth(2025, 12).issue_on == date(2026, 1, 1)
    assert str(BillingMonth(2025, 3)) == "2025-03"


def test_one_invoice_per_company_per_month_with_its_charges_and_total() -> None:
    january = BillingMonth(2025, 1)
    charges = [
        charge("a", datetime(2025, 1, 1, 0, 0, tzinfo=UTC), 1_000),
        charge("b", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC), 2_500),
        charge("c", datetime(2025, 2, 1, 0, 0, tzinfo=UTC), 9_999),  # February
        charge("d", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), 9_999),  # December
        charge("e", datetime(2025, 1, 15, tzinfo=UTC), 9_999, company="co-2"),
        charge("f", datetime(2025, 1, 31, 20, 0, tzinfo=NEW_YORK), 9_999),  # 01:00 UTC on 1 Feb
    ]
    invoice = invoice_for_month("co-1", january, charges, today=date(2025, 2, 1))
    assert invoice is not None
    assert [c.charge_id for c in invoice.charges] == ["a", "b"]
    assert invoice.total_cents == 3_500
    assert invoice.invoice_id == "INV-co-1-2025-01"
    assert (invoice.issued_on, invoice.due_on) == (date(2025, 2, 1), date(2025, 3, 3))
    again = invoice_for_month("co-1", january, reversed(charges), today=date(2025, 2, 5))
    assert again is not None and again.invoice_id == invoice.invoice_id and again.charges == invoice.charges


def test_an_invoice_waits_for_the_month_to_end() -> None:
    with pytest.raises(CommerceError, match="from 2025-02-01"):
        invoice_for_month("co-1", BillingMonth(2025, 1), [], today=date(2025, 1, 31))


def test_no_invoice_for_a_month_without_charges() -> None:
    charges = [charge("a", datetime(2025, 3, 1, tzinfo=UTC))]
    assert invoice_for_month("co-1", BillingMonth(2025, 2), charges, today=date(2025, 3, 1)) is None


def test_december_is_invoiced_in_january() -> None:
    invoice = invoice_for_month(
        "co-1", BillingMonth(2024, 12), [charge("a", datetime(2024, 12, 31, 23, 0, tzinfo=UTC))], date(2025, 1, 1)
    )
    assert invoice is not None and invoice.invoice_id == "INV-co-1-2024-12"


def test_an_invoice_is_in_one_currency() -> None:
    charges = [
        charge("a", datetime(2025, 1, 2, tzinfo=UTC)),
        charge("b", datetime(2025, 1, 3, tzinfo=UTC), currency="EUR"),
    ]
    with pytest.raises(CommerceError, match="several currencies"):
        invoice_for_month("co-1", BillingMonth(2025, 1), charges, date(2025, 2, 1))
