"""The bus's tables in a service's own database: outbox, inbox and schedule (SQLAlchemy 2 Core).

They live on `metadata`; a service that manages its schema with its own `MetaData` (Alembic) adds
them with `include_in(its_metadata)`. The names are fixed (`bus_outbox`, `bus_inbox`,
`bus_schedule`) so the bus's queries work whichever `MetaData` created them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect

from scte.bus.transport import OutgoingMessage

__all__ = [
    "UtcDateTime",
    "bus_inbox",
    "bus_outbox",
    "bus_schedule",
    "include_in",
    "message_columns",
    "message_from_row",
    "metadata",
    "utcnow",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive and gives it back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

metadata = MetaData()

bus_outbox = Table(
    "bus_outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject", String(256), nullable=True, comment="ordering key: the aggregate; NULL = no order"),
    Column("topic", String(256), nullable=False, comment="logical topic name"),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("group_id", String(128), nullable=True),
    Column("deduplication_id", String(128), nullable=True),
    Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(
        "ix_bus_outbox_unsent",
        "id",
        sqlite_where=text("sent_at IS NULL"),
        postgresql_where=text("sent_at IS NULL"),
    ),
    Index("ix_bus_outbox_sent_at", "sent_at"),
)
"""Events written in the business transaction, delivered by the relay (sent_at set once acknowledged)."""

bus_inbox = Table(
    "bus_inbox",
    metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("processed_at", UtcDateTime, nullable=False, default=utcnow),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_bus_inbox"),
)
"""Events a consumer has handled, written in the handler's transaction: redeliveries are skipped."""

bus_schedule = Table(
    "bus_schedule",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("deliver_at", UtcDateTime, nullable=False),
    Column("topic", String(256), nullable=True, comment="logical topic, or"),
    Column("queue", String(256), nullable=True, comment="logical queue"),
    Column("body", Text, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("group_id", String(128), nullable=True),
    Column("deduplication_id", String(128), nullable=True),
    Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    CheckConstraint("(topic IS NULL) <> (queue IS NULL)", name="ck_bus_schedule_target"),
    Index("ix_bus_schedule_deliver_at", "deliver_at"),
)
"""Messages to deliver later than SQS's 15-minute delay allows (the scheduler sends them when due)."""


def include_in(target: MetaData) -> None:
    """Add the bus tables to a service's own `MetaData` (for `create_all` or Alembic autogenerate)."""
    for table in metadata.tables.values():
        if table.name not in target.tables:
            table.to_metadata(target)


def message_columns(message: OutgoingMessage) -> dict[str, Any]:
    """The message columns (`body`, `attributes`, `group_id`, `deduplication_id`) of an outgoing message."""
    return {
        "body": message.body,
        "attributes": dict(message.attributes),
        "group_id": message.group_id,
        "deduplication_id": message.deduplication_id,
    }


def message_from_row(row: Mapping[Any, Any]) -> OutgoingMessage:
    """The outgoing message stored in a row's message columns."""
    attributes = row["attributes"] or {}
    return OutgoingMessage(
        body=row["body"],
        attributes={str(k): str(v) for k, v in attributes.items()},
        group_id=row["group_id"],
        deduplication_id=row["deduplication_id"],
    )
