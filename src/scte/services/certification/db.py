"""The certification service's tables: certifications, the recertification-unit ledger, renewals.

Statuses are not stored as truth (they follow from the dates and `domain.status_at`); `status` is the
last status the service announced, so each milestone publishes its event once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, MetaData, String, Table

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

from .domain import Certification, Program, UnitCredit, UnitLedger, UnitSource

__all__ = ["certifications", "metadata", "renewals", "row_to_certification", "unit_credits"]

metadata = MetaData()

certifications = Table(
    "certifications",
    metadata,
    Column("certification_id", String(128), primary_key=True),
    Column("member_id", String(128), nullable=False),
    Column("program", String(8), nullable=False),
    Column("originally_awarded_on", Date, nullable=False),
    Column("cycle_start", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("emeritus_on", Date, nullable=True),
    Column("status", String(16), nullable=False, comment="the last status announced"),
    Column("attempt_id", String(128), nullable=True, comment="the passed exam that awarded it"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_certifications_member_program", "member_id", "program"),
    Index("ix_certifications_expires_on", "expires_on"),
)

unit_credits = Table(
    "unit_credits",
    metadata,
    Column("credit_id", String(200), primary_key=True, comment="derived from what earned it: idempotent"),
    Column("member_id", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("units", Integer, nullable=False),
    Column("earned_on", Date, nullable=False),
    Column("reference", String(200), nullable=False),
    Column("credited_at", UtcDateTime, nullable=False),
    Index("ix_unit_credits_member", "member_id", "earned_on"),
)

renewals = Table(
    "renewals",
    metadata,
    Column("renewal_id", String(128), primary_key=True),
    Column("certification_id", String(128), ForeignKey("certifications.certification_id"), nullable=False),
    Column("member_id", String(128), nullable=False),
    Column("renewed_on", Date, nullable=False),
    Column("basis", String(8), nullable=False),
    Column("previous_expires_on", Date, nullable=False),
    Column("cycle_start", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("units_earned", Integer, nullable=False),
    Index("ix_renewals_certification", "certification_id"),
)

include_in(metadata)
include_revocations(metadata)


def row_to_certification(row: Mapping[Any, Any]) -> Certification:
    return Certification(
        certification_id=row["certification_id"],
        member_id=row["member_id"],
        program=Program(row["program"]),
        originally_awarded_on=row["originally_awarded_on"],
        cycle_start=row["cycle_start"],
        expires_on=row["expires_on"],
        emeritus_on=row["emeritus_on"],
    )


def row_to_credit(row: Mapping[Any, Any]) -> UnitCredit:
    return UnitCredit(
        credit_id=row["credit_id"],
        member_id=row["member_id"],
        source=UnitSource(row["source"]),
        units=row["units"],
        earned_on=row["earned_on"],
        reference=row["reference"],
    )


def ledger_of(member_id: str, rows: Iterable[Any]) -> UnitLedger:
    ledger = UnitLedger(member_id)
    for row in rows:
        ledger.credit(row_to_credit(row))
    return ledger
