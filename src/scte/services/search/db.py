"""The search database: the documents (members listed in the directory, courses, processed media),
the read models they are built from, and the full-text index.

The index is created by the migration, per engine: an FTS5 table `documents_fts` on SQLite, a
generated `tsv` tsvector column with a GIN index on PostgreSQL. Neither is in this MetaData, which
only SQLAlchemy's portable types can describe."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, MetaData, String, Table, Text

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = ["documents", "member_certifications", "members", "metadata"]

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("member_id", String(128), primary_key=True),
    Column("display_name", String(200), nullable=False, default=""),
    Column("city", String(100), nullable=True),
    Column("country", String(2), nullable=True),
    Column("listed", Boolean, nullable=False, default=False),
)
"""From member.registered / member.profile_updated: whether and how a member is listed."""

member_certifications = Table(
    "member_certifications",
    metadata,
    Column("certification_id", String(128), primary_key=True),
    Column("member_id", String(128), nullable=False, index=True),
    Column("program", String(8), nullable=False),
    Column("held", Boolean, nullable=False),
    Column("emeritus", Boolean, nullable=False, default=False),
)
"""From certification.*: the designations shown and searched on a member's entry."""

documents = Table(
    "documents",
    metadata,
    Column("doc_id", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("entity_id", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("tags", Text, nullable=False, default="", comment="facet values, searchable as words"),
    Column("program", String(200), nullable=False, default="", comment="space-separated designations"),
    Column("city", String(100), nullable=False, default="", comment="lower case"),
    Column("country", String(2), nullable=False, default="", comment="lower case"),
    Column("extra", Text, nullable=False, default="{}", comment="JSON: facets and links for the result"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_documents_kind", "kind"),
)

include_in(metadata)
include_revocations(metadata)
