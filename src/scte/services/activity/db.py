"""The activity database: one row per stream entry, written in batches."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table, Text

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = ["entries", "metadata"]

metadata = MetaData()

entries = Table(
    "activity_entries",
    metadata,
    Column("activity_id", String(160), primary_key=True, comment="the idempotency key: a redelivery adds nothing"),
    Column("member_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("path", Text, nullable=True),
    Index("ix_activity_member_time", "member_id", "occurred_at"),
    Index("ix_activity_time", "occurred_at"),
)

include_in(metadata)
include_revocations(metadata)
