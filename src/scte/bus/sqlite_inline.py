"""An aiosqlite-compatible SQLite driver that runs `sqlite3` on the event-loop thread.

aiosqlite runs every statement on a thread of its own: each call is a queue hand-off, a thread
wake-up and a loop wake-up (`call_soon_threadsafe`), about 0.8 ms through SQLAlchemy on a busy
machine, for statements that take microseconds. The Python around each statement gains nothing
from the thread under the GIL (the queue engine measured the same: docs/queue-engine.md, "Why the
SQL runs on the event loop"). This module offers aiosqlite's API (`connect`, `Connection`, `Cursor`,
coroutines all) but calls `sqlite3` directly, so an `await` on it never leaves the loop's thread.

What it does not do is wait inside SQLite: the connection is opened with a zero busy timeout, and a
statement that finds the database locked by another process (`SQLITE_BUSY`) is retried with
`asyncio.sleep` back-offs until the connection's `timeout` runs out, so the loop keeps running
meanwhile. A statement answered `SQLITE_BUSY` had no effect (even inside a transaction, which stays
open), so retrying it is safe. Within one process, `scte.bus.database.sqlite_engine` queues
transactions on one connection, so they never meet a lock at all.

Long statements (a `VACUUM`, a scan of a huge table) block the loop while they run; the bus's
statements are index lookups and short inserts. The WAL checkpoint SQLite runs inside a commit every
1,000 pages is the longest regular step (a few milliseconds).

    db = await sqlite_inline.connect("service.db")
    async with db.execute("SELECT 1") as cursor:
        print(await cursor.fetchone())
    await db.close()
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from sqlite3 import (
    DatabaseError,
    Error,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Row,
    Warning,
    sqlite_version,
    sqlite_version_info,
)
from typing import Any, TypeVar

__all__ = [
    "Connection",
    "Cursor",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Row",
    "Warning",
    "connect",
    "sqlite_version",
    "sqlite_version_info",
]

__version__ = "1.0"

T = TypeVar("T")

_BUSY = frozenset({5, 261, 773})  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY, SQLITE_BUSY_TIMEOUT (not BUSY_SNAPSHOT)
_FIRST_PAUSE = 0.0005
_MAX_PAUSE = 0.05


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # before Python 3.11
        return "database is locked" in str(exc)
    return code in _BUSY


class Cursor:
    """An aiosqlite `Cursor`: the `sqlite3.Cursor`'s methods as coroutines."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        if parameters is None:
            await self._connection._retry(self._cursor.execute, sql)
        else:
            await self._connection._retry(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        rows = parameters if isinstance(parameters, Sequence) else list(parameters)  # replayable on retry
        await self._connection._retry(self._cursor.executemany, sql, rows)
        return self

    async def executescript(self, script: str) -> Cursor:
        await self._connection._retry(self._cursor.executescript, script)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None

    async def nextset(self) -> None:
        return None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    @property
    def row_factory(self) -> Any:
        return self._cursor.row_factory

    @row_factory.setter
    def row_factory(self, value: Any) -> None:
        self._cursor.row_factory = value

    @property
    def connection(self) -> Connection:
        return self._connection

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    def __await__(self) -> Generator[Any, None, Cursor]:  # `await connection.cursor()`, as in aiosqlite
        return _ready(self).__await__()


async def _ready(value: T) -> T:
    return value


class Connection:
    """An aiosqlite `Connection` whose coroutines run `sqlite3` inline (see the module docstring).

    `await connect(...)` and `async with connect(...)` both work, as in aiosqlite. `_connection` is
    the `sqlite3.Connection` (None once closed), the attribute SQLAlchemy's aiosqlite dialect reads."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout: float) -> None:
        self._connector = connector
        self._connection: sqlite3.Connection | None = None
        self.busy_timeout = busy_timeout

    # -- opening and closing ---------------------------------------------------------------------------

    async def _open(self) -> Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def __aenter__(self) -> Connection:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's `terminate`); idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _retry(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, retried while another process holds the database's lock."""
        deadline: float | None = None
        pause = _FIRST_PAUSE
        while True:
            try:
                return call(*args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.busy_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(_MAX_PAUSE, pause * 2)

    # -- the aiosqlite API -----------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    def execute(self, sql: str, parameters: Any = None) -> _CursorCall:
        """`await db.execute(...)` or `async with db.execute(...) as cursor`, as in aiosqlite."""
        return _CursorCall(self, "execute", sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any]) -> _CursorCall:
        return _CursorCall(self, "executemany", sql, parameters)

    async def executescript(self, script: str) -> Cursor:
        return await self.cursor().executescript(script)

    async def execute_fetchall(self, sql: str, parameters: Any = None) -> list[Any]:
        cursor = await self.cursor().execute(sql, parameters)
        try:
            return await cursor.fetchall()
        finally:
            await cursor.close()

    async def commit(self) -> None:
        await self._retry(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], **kwargs: Any) -> None:
        self._conn.create_function(name, num_params, func, **kwargs)

    async def set_trace_callback(self, handler: Callable[[str], object] | None) -> None:
        self._conn.set_trace_callback(handler)

    async def interrupt(self) -> None:
        self._conn.interrupt()

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]  # sqlite3 checks the value

    @property
    def row_factory(self) -> Any:
        return self._conn.row_factory

    @row_factory.setter
    def row_factory(self, value: Any) -> None:
        self._conn.row_factory = value

    @property
    def text_factory(self) -> Any:
        return self._conn.text_factory

    @text_factory.setter
    def text_factory(self, value: Any) -> None:
        self._conn.text_factory = value

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes


class _CursorCall:
    """What `Connection.execute` returns: awaitable (the cursor) and an async context manager."""

    def __init__(self, connection: Connection, method: str, sql: str, parameters: Any) -> None:
        self._connection = connection
        self._method = method
        self._sql = sql
        self._parameters = parameters
        self._cursor: Cursor | None = None

    async def _run(self) -> Cursor:
        cursor = self._connection.cursor()
        if self._method == "execute":
            await cursor.execute(self._sql, self._parameters)
        else:
            await cursor.executemany(self._sql, self._parameters)
        self._cursor = cursor
        return cursor

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


def connect(database: str | Path, *, timeout: float = 5.0, **kwargs: Any) -> Connection:
    """A connection to `database` (awaitable, or an async context manager), as `aiosqlite.connect`.

    `timeout` is how long a statement waits, without blocking the loop, for another process's lock;
    other keyword arguments go to `sqlite3.connect`. The connection may be used from any thread but
    only from one at a time (it is meant for one event loop)."""
    kwargs.pop("loop", None)
    kwargs.pop("iter_chunk_size", None)
    kwargs["check_same_thread"] = False  # SQLAlchemy may close it from the GC's thread

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, timeout=0.0, **kwargs)
        return connection

    return Connection(connector, timeout)
