"""Database helpers of the notifications service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["upsert"]


async def upsert(
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
