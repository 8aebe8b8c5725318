"""Reports rules: the aggregates kept from business events, and their CSV export.

Reports never query another service: each aggregate is a counter fed by events as they arrive
(idempotency is the bus's inbox, so each event is applied once). Months are calendar months in
UTC, keyed "YYYY-MM", so a report reads the same wherever it is opened. Money is summed per
currency, never converted.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

__all__ = [
    "Aggregates",
    "ReportKind",
    "month_key",
    "rows_for",
    "to_csv",
]


class ReportKind(StrEnum):
    MEMBERS_BY_STATUS = "members_by_status"
    CERTIFICATIONS_PER_PROGRAM_MONTH = "certifications_per_program_month"
    REVENUE_PER_MONTH = "revenue_per_month"
    COMPLETIONS_PER_MONTH = "completions_per_month"


def month_key(moment: datetime | date) -> str:
    """The month key (YYYY-MM) of a day, or of an instant in UTC: a naive datetime is refused, its
    month is unknowable."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a datetime must carry a time zone")
        moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


@dataclass
class Aggregates:
    """The counters behind every report."""

    member_status: dict[str, str] = field(default_factory=dict)
    """member id -> current status: members by status is a count over it, so a status change moves
    a member from one count to another instead of counting them twice."""
    certifications: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(program, month) -> certifications awarded."""
    revenue: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(month, currency) -> cents paid."""
    completions: Counter[str] = field(default_factory=Counter)
    """month -> courses completed."""

    def member_status_changed(self, member_id: str, status: str) -> None:
        self.member_status[member_id] = status

    def certification_awarded(self, program: str, awarded_on: date) -> None:
        self.certifications[(program, month_key(awarded_on))] += 1

    def order_paid(self, total_cents: int, currency: str, paid_at: datetime) -> None:
        self.revenue[(month_key(paid_at), currency)] += total_cents

    def course_completed(self, completed_at: datetime) -> None:
        self.completions[month_key(completed_at)] += 1

    def members_by_status(self) -> dict[str, int]:
        return dict(sorted(Counter(self.member_status.values()).items()))


HEADERS: dict[ReportKind, tuple[str, ...]] = {
    ReportKind.MEMBERS_BY_STATUS: ("status", "members"),
    ReportKind.CERTIFICATIONS_PER_PROGRAM_MONTH: ("month", "program", "certifications"),
    ReportKind.REVENUE_PER_MONTH: ("month", "currency", "amount"),
    ReportKind.COMPLETIONS_PER_MONTH: ("month", "completions"),
}


def _money(cents: int) -> str:
    """Cents as a decimal amount ("1234.05"): what a spreadsheet reads as money."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def rows_for(kind: ReportKind, agg: Aggregates) -> list[tuple[str, ...]]:
    """A report's rows, sorted (month first where there is one), without the header."""
    if kind is ReportKind.MEMBERS_BY_STATUS:
        return [(status, str(n)) for status, n in agg.members_by_status().items()]
    if kind is ReportKind.CERTIFICATIONS_PER_PROGRAM_MONTH:
        return [(month, program, str(n)) for (program, month), n in sorted(agg.certifications.items(), key=_by_month)]
    if kind is ReportKind.REVENUE_PER_MONTH:
        return [(month, currency, _money(cents)) for (month, currency), cents in sorted(agg.revenue.items())]
    return [(month, str(n)) for month, n in sorted(agg.completions.items())]


def _by_month(item: tuple[tuple[str, str], int]) -> tuple[str, str]:
    (program, month), _ = item
    return month, program


def to_csv(kind: ReportKind, rows: Iterable[Sequence[str]]) -> str:
    """RFC 4180 CSV with a header row and CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS[kind])
    writer.writerows(rows)
    return buffer.getvalue()
