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
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = [
    "member_certifications",
    "member_sessions",
    "members",
    "memberships",
    "metadata",
    "password_resets",
    "refresh_tokens",
]

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

# -- sign-in sessions (scte.services.members.sessions, .passwords) ----------------------------------------
# Secrets (refresh tokens, reset tokens) are stored as SHA-256 hex digests: they are 256-bit random
# values, so a fast hash is enough, and a copy of the database lets nobody in.

member_sessions = Table(
    "member_sessions",
    metadata,
    Column("id", String(64), primary_key=True, comment="the sid claim of the session's access tokens"),
    Column("member_id", String(64), ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("epoch", Integer, nullable=False, comment="the member's revocation epoch at sign-in"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, comment="absolute end, however often refreshed"),
    Column("last_refreshed_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Index("ix_member_sessions_member", "member_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True, comment="sha256 hex of the opaque token"),
    Column("session_id", String(64), ForeignKey("member_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True, comment="rotated: presenting it again revokes the session"),
    Index("ix_refresh_tokens_session", "session_id"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True, comment="sha256 hex of the mailed token"),
    Column("member_id", String(64), ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True, comment="single use: set when used or superseded"),
    Index("ix_password_resets_member", "member_id"),
)

include_in(metadata)
include_revocations(metadata)
