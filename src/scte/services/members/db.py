"""The members service's tables: accounts, membership terms, and the certifications read model.

`member_certifications` is members' own copy of what certification decided (fed by certification.*
events): designations are computed from it without asking the certification service.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from scte.bus.storage import UtcDateTime, include_in

__all__ = ["member_certifications", "members", "memberships", "metadata"]

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(254), nullable=False, unique=True, comment="normalised: lower-case, trimmed"),
    Column("password_hash", Text, nullable=False, comment="argon2id"),
    Column("display_name", String(100), nullable=False),
    Column("city", String(100), nullable=True),
    Column("country", String(2), nullable=True),
    Column("listed_in_directory", Boolean, nullable=False, default=False),
    Column("roles", JSON, nullable=False, comment="platform roles: member, staff, company_admin"),
    Column("company_id", String(64), nullable=True, comment="the company the member administers"),
    Column("status", String(16), nullable=False, comment="last published standing (prospect, active...)"),
    Column("designations", JSON, nullable=False, comment="last published post-nominals"),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("member_id", String(64), ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("member_since", Date, nullable=False),
    Column("term_start", Date, nullable=False),
    Column("term_end", Date, nullable=False),
    Column("last_order_id", String(128), nullable=False),
    Column("lapse_published_for", Date, nullable=True, comment="term_end whose lapse was announced"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_memberships_term_end", "term_end"),
)

member_certifications = Table(
    "member_certifications",
    metadata,
    Column("certification_id", String(128), primary_key=True),
    Column("member_id", String(64), nullable=False, comment="no foreign key: events may precede the account"),
    Column("program", String(8), nullable=False),
    Column("state", String(16), nullable=False, comment="active, expired, lapsed"),
    Column("emeritus", Boolean, nullable=False, default=False),
    Column("expires_on", Date, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_member_certifications_member", "member_id"),
)

include_in(metadata)
