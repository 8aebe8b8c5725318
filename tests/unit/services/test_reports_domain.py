"""Reports rules: aggregates per UTC month, members by status, revenue per currency, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from scte.services.reports.domain import Aggregates, ReportKind, month_key, rows_for, to_csv

NEW_YORK = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("moment", "key"),
    [
        (datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC), "2025-01"),
        (datetime(2025, 1, 31, 20, 0, tzinfo=NEW_YORK), "2025-02"),
        (date(2024, 2, 29), "2024-02"),
        (datetime(999, 12, 1, tzinfo=UTC), "0999-12"),
    ],
)
def test_month_key_in_utc(moment: datetime | date, key: str) -> None:
    assert month_key(moment) == key


def test_month_key_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        month_key(datetime(2025, 1, 1))


def test_members_by_status_moves_a_member_instead_of_counting_twice() -> None:
    agg = Aggregates()
    agg.member_status_changed("m-1", "active")
    agg.member_status_changed("m-2", "active")
    agg.member_status_changed("m-1", "grace")
    assert agg.members_by_status() == {"active": 1, "grace": 1}
    assert rows_for(ReportKind.MEMBERS_BY_STATUS, agg) == [("active", "1"), ("grace", "1")]


def test_certifications_per_program_per_month() -> None:
    agg = Aggregates()
    for program, day in [("BPI", date(2025, 2, 1)), ("BPI", date(2025, 2, 28)), ("BDS", date(2025, 1, 31))]:
        agg.certification_awarded(program, day)
    assert rows_for(ReportKind.CERTIFICATIONS_PER_PROGRAM_MONTH, agg) == [
        ("2025-01", "BDS", "1"),
        ("2025-02", "BPI", "2"),
    ]


def test_revenue_per_month_and_currency() -> None:
    agg = Aggregates()
    agg.order_paid(8_500, "USD", datetime(2025, 3, 31, 23, 0, tzinfo=UTC))
    agg.order_paid(1_505, "USD", datetime(2025, 3, 1, 0, 0, tzinfo=UTC))
    agg.order_paid(5, "EUR", datetime(2025, 3, 2, tzinfo=UTC))
    agg.order_paid(100, "USD", datetime(2025, 3, 31, 20, 0, tzinfo=NEW_YORK))  # April in UTC
    assert rows_for(ReportKind.REVENUE_PER_MONTH, agg) == [
        ("2025-03", "EUR", "0.05"),
        ("2025-03", "USD", "100.05"),
        ("2025-04", "USD", "1.00"),
    ]


def test_completions_per_month() -> None:
    agg = Aggregates()
    agg.course_completed(datetime(2025, 1, 1, tzinfo=UTC))
    agg.course_completed(datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    agg.course_completed(datetime(2025, 1, 20, tzinfo=UTC))
    assert rows_for(ReportKind.COMPLETIONS_PER_MONTH, agg) == [("2024-12", "1"), ("2025-01", "2")]


def test_csv_has_a_header_and_quotes_where_needed() -> None:
    text = to_csv(ReportKind.MEMBERS_BY_STATUS, [("active", "3"), ('odd, "status"', "1")])
    assert text.startswith("status,members\r\n")
    assert list(csv.reader(io.StringIO(text))) == [["status", "members"], ["active", "3"], ['odd, "status"', "1"]]


@pytest.mark.parametrize("kind", list(ReportKind))
def test_every_report_kind_exports_with_its_header(kind: ReportKind) -> None:
    text = to_csv(kind, rows_for(kind, Aggregates()))
    assert text.count("\r\n") == 1
