"""A service database on SQLite, set up for the bus's concurrent transactions.

SQLite lets one transaction write at a time. Left to its defaults, concurrent handlers, publishers
and the relay of one process fail in two ways: a transaction that read first and then writes cannot
upgrade a stale snapshot (`database is locked` at once), and waiting writers poll with sleeps of up to
100 ms (SQLite's busy handler), which turns a millisecond of work into a hundred. So the engine:
- opens every transaction with `BEGIN IMMEDIATE` (the write lock is taken at the start, or waited for);
- keeps one connection per process (`pool_size=1`): transactions of one process queue in the pool,
  in order and without sleeping, instead of in SQLite's busy handler; other processes still wait
  through the busy timeout;
- uses WAL with `synchronous=NORMAL` (a commit survives a process crash; an OS crash may lose the last
  transactions, as with the broker's "normal" durability).

PostgreSQL needs none of this: use `create_async_engine("postgresql+asyncpg://...")` as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["sqlite_engine"]


def sqlite_engine(path: str | Path, *, pool_size: int = 1, busy_timeout: float = 30.0, **kwargs: Any) -> AsyncEngine:
    """An aiosqlite engine on the file at `path` (created if missing)."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        connect_args={"timeout": busy_timeout},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=300,
        **kwargs,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
