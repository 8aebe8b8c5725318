"""The reports database: the counters behind each report (scte.services.reports.domain.Aggregates),
fed by business events, and the log of generated report files."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, PrimaryKeyConstraint, String, Table

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = ["award_counts", "completion_counts", "member_statuses", "metadata", "report_runs", "revenue"]

metadata = MetaData()
_Big = BigInteger().with_variant(Integer(), "sqlite")

member_statuses = Table(
    "member_statuses",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("status", String(32), nullable=False),
)
"""member -> current status: a status change moves a member, it does not count them twice."""

award_counts = Table(
    "award_counts",
    metadata,
    Column("program", String(8), nullable=False),
    Column("month", String(7), nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("program", "month", name="pk_award_counts"),
)

revenue = Table(
    "revenue",
    metadata,
    Column("month", String(7), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("cents", _Big, nullable=False),
    PrimaryKeyConstraint("month", "currency", name="pk_revenue"),
)

completion_counts = Table(
    "completion_counts",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("count", Integer, nullable=False),
)

report_runs = Table(
    "report_runs",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("location", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
"""Reports generated on request (report.ready): their CSV file is kept under the data directory."""

include_in(metadata)
include_revocations(metadata)
