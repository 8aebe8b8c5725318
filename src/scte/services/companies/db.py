"""The companies database: companies, employment links and roles (owned here), and the read models
fed by other services' events (members, certifications, training spend) that rollups are computed from."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = [
    "cert_views",
    "companies",
    "company_roles",
    "employments",
    "invitations",
    "member_views",
    "metadata",
    "rollups",
    "spend_entries",
]

metadata = MetaData()

companies = Table(
    "companies",
    metadata,
    Column("company_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False, default="USD"),
    Column("created_at", UtcDateTime, nullable=False),
)

employments = Table(
    "employments",
    metadata,
    Column("company_id", String(128), nullable=False),
    Column("member_id", String(128), nullable=False),
    Column("started_on", Date, nullable=False),
    Column("ended_on", Date, nullable=True),
    PrimaryKeyConstraint("company_id", "member_id", "started_on", name="pk_employments"),
    Index("ix_employments_member", "member_id"),
)
"""[started_on, ended_on): a member may leave and come back (a new row)."""

invitations = Table(
    "invitations",
    metadata,
    Column("invitation_id", String(64), primary_key=True),
    Column("company_id", String(128), nullable=False, index=True),
    Column("member_id", String(128), nullable=True, index=True),
    Column("email", String(320), nullable=True, index=True),
    Column("invited_by", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime, nullable=True),
)
"""A company asking a member to join (scte.services.companies.domain.Invitation): by member id, or by
e-mail address (lower case) matched against member_views when the member reads their invitations."""

company_roles = Table(
    "company_roles",
    metadata,
    Column("company_id", String(128), nullable=False),
    Column("member_id", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    PrimaryKeyConstraint("company_id", "member_id", "role", name="pk_company_roles"),
)

member_views = Table(
    "member_views",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("email", String(320), nullable=True),
    Column("display_name", String(200), nullable=True),
    Column("status", String(32), nullable=True),
    Column("designations", JSON, nullable=False, default=list),
)
"""What companies knows of members (member.* events), to list employees."""

cert_views = Table(
    "cert_views",
    metadata,
    Column("certification_id", String(128), primary_key=True),
    Column("member_id", String(128), nullable=False, index=True),
    Column("program", String(8), nullable=False),
    Column("expires_on", Date, nullable=True),
    Column("held", Boolean, nullable=False),
)
"""Certifications from certification.* events (scte.services.companies.domain.CertificationView)."""

spend_entries = Table(
    "spend_entries",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("company_id", String(128), nullable=False, index=True),
    Column("amount_cents", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_at", UtcDateTime, nullable=False),
)
"""Training spend, one row per order: an order paid against a purchase order arrives both as
order.paid and po.charged and must count once."""

rollups = Table(
    "rollups",
    metadata,
    Column("company_id", String(128), primary_key=True),
    Column("as_of", UtcDateTime, nullable=False),
    Column("employee_count", Integer, nullable=False),
    Column("certified_headcount", JSON, nullable=False),
    Column("expiring_within_days", Integer, nullable=False),
    Column("expiring_count", Integer, nullable=False),
    Column("training_spend_cents", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("currency", String(3), nullable=False),
)
"""The last published rollup per company: a new one is published only when it differs."""

include_in(metadata)
include_revocations(metadata)
