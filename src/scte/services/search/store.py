"""Database helpers of the search service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["serialize", "upsert_row"]


async def upsert_row(
    session: AsyncSession, table: Table, values: Mapping[str, Any], keys: Iterable[str], *, update: bool = True
) -> None:
    """Insert a row, or update (or leave, with update=False) the row with the same keys."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    key_list = list(keys)
    changes = {k: v for k, v in values.items() if k not in key_list}
    if update and changes:
        await session.execute(statement.on_conflict_do_update(index_elements=key_list, set_=changes))
    else:
        await session.execute(statement.on_conflict_do_nothing(index_elements=key_list))


async def serialize(session: AsyncSession, key: str) -> None:
    """Hold a transaction-scoped lock on `key` (PostgreSQL): handlers of one aggregate running at
    once on different messages would each miss the other's uncommitted change and store a stale
    result. SQLite transactions are serialized already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
