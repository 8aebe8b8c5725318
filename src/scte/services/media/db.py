"""The media database: uploads and their renditions (the files live under the data directory)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

__all__ = ["media", "metadata", "renditions"]

metadata = MetaData()
_Big = BigInteger().with_variant(Integer(), "sqlite")

media = Table(
    "media",
    metadata,
    Column("media_id", String(64), primary_key=True),
    Column("owner_id", String(128), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("title", String(200), nullable=False, default=""),
    Column("content_type", String(64), nullable=False),
    Column("size_bytes", _Big, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(255), nullable=False),
    Column("status", String(16), nullable=False, comment="uploaded | processed | failed"),
    Column("error", Text, nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("uploaded_at", UtcDateTime, nullable=False),
    Column("processed_at", UtcDateTime, nullable=True),
)

renditions = Table(
    "renditions",
    metadata,
    Column("media_id", String(64), nullable=False),
    Column("name", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("storage_key", String(255), nullable=False),
    Column("size_bytes", _Big, nullable=False),
    PrimaryKeyConstraint("media_id", "name", name="pk_renditions"),
)

include_in(metadata)
include_revocations(metadata)
