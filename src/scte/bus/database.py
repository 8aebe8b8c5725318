"""A service database on SQLite, set up for the bus's concurrent transactions.

SQLite lets one transaction write at a time. Left to its defaults, concurrent handlers, publishers
and the relay of one process fail in two ways: a transaction that read first and then writes cannot
upgrade a stale snapshot (`database is locked` at once), and waiting writers poll with sleeps of up to
100 ms (SQLite's busy handler), which turns a millisecond of work into a hundred. So the engine:
- runs SQLite on the event loop's thread (`scte.bus.sqlite_inline`, aiosqlite's API without its
  thread): a statement costs microseconds instead of a thread hand-off and a loop wake-up each;
- opens every transaction with `BEGIN IMMEDIATE` (the write lock is taken at the start, or waited for);
- keeps one connection per engine (`pool_size=1`): transactions of one process queue for it in
  asyncio, in order and without sleeping, instead of in SQLite's busy handler; a lock held by another
  process is waited for with `asyncio.sleep` back-offs up to `busy_timeout`, never blocking the loop;
- uses WAL with `synchronous=NORMAL` (a commit survives a process crash; an OS crash may lose the last
  transactions, as with the broker's "normal" durability).

The URL form is `sqlite+scte:///path` (registered when this module is imported), for code that builds
engines from URLs (Alembic, settings); `sqlite_engine` adds the connection set-up above.

PostgreSQL needs none of this: use `create_async_engine("postgresql+asyncpg://...")` as is.
"""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.util.concurrency import await_

from scte import speed_paths
from scte.bus import greenlets, sqlite_inline

__all__ = [
    "BusSession",
    "InlineSQLiteDialect",
    "closes_inline",
    "configure_sqlite",
    "inline_dbapi",
    "inline_sqlite3",
    "run_inline",
    "sessionmaker",
    "sqlite_engine",
]


class _InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor adapter on a `sqlite_inline.Cursor`.

    SQLAlchemy runs sync code in a greenlet and crosses to the event loop for every awaitable
    (`await_`). A statement still crosses once (the driver's coroutine runs it inline, and
    `AsyncConnection.execute` insists on seeing an await), but entering and closing cursors and
    fetching rows call `sqlite3` directly: none of them can wait."""

    __slots__ = ()
    _awaitable_cursor_close = False

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # a sqlite_inline.Cursor: nothing to enter

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor: sqlite_inline.Cursor = self._cursor  # type: ignore[assignment]
        try:
            result = await_(cursor.execute(operation, parameters))
            raw = cursor._cursor
            if raw.description:
                self._rows = collections.deque(raw.fetchall())
            return result
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        cursor: sqlite_inline.Cursor = self._cursor  # type: ignore[assignment]
        try:
            return await_(cursor.executemany(operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def close(self) -> None:
        self._rows.clear()
        if self._cursor is not None:
            self._cursor._cursor.close()  # type: ignore[attr-defined]


class _InlineConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter on a `sqlite_inline.Connection`, without the
    greenlet crossings (see `_InlineCursor`). The isolation level is a plain attribute here
    (aiosqlite's adapter posts it to the driver's thread)."""

    __slots__ = ()
    _cursor_cls = _InlineCursor

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def commit(self) -> None:
        connection: sqlite_inline.Connection = self._connection  # type: ignore[assignment]
        raw = connection._connection
        if raw is None:
            return
        try:
            try:
                raw.commit()
            except sqlite3.OperationalError as exc:
                if not sqlite_inline._busy(exc):
                    raise
                await_(connection.commit())
        except Exception as error:
            self._handle_exception(error)

    def rollback(self) -> None:
        raw = self._connection._connection
        if raw is None:
            return
        try:
            raw.rollback()
        except Exception as error:
            self._handle_exception(error)


def _direct(connection: Any, sql: str) -> bool:
    """Run a statement without parameters or rows (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO) on the
    `sqlite3` connection under `connection` (an engine `Connection`) when it is the inline driver's;
    False when it is not, or when the database is locked by another process (the caller then takes
    the ordinary path, which waits for the lock without blocking the loop).

    SQLAlchemy runs these as compiled expressions through a full execution context; savepoints are
    not even cached, so a SAVEPOINT and its RELEASE cost more than the statement they protect (a
    third of the consumer's batch). Errors become SQLAlchemy's `DBAPIError`s, as on the ordinary path."""
    adapter = connection.connection.dbapi_connection
    if not isinstance(adapter, _InlineConnection):
        return False
    raw = adapter._connection._connection
    if raw is None:
        return False
    return _execute(raw, sql, None) is not None


async def inline_sqlite3(session: AsyncSession, clause: ClauseElement) -> sqlite3.Connection | None:
    """The `sqlite3` connection under the session's transaction (begun if it was not) when the bind
    for `clause` runs on the inline driver; None otherwise (nothing begun then).

    For the bus's own one-row statements (the outbox insert, the inbox row and check): through the
    session (`Session.execute`: the ORM's execution path, a cache lookup, an execution context, bind
    processing, the result) they cost several times SQLite's work. Executed on this connection with
    `run_inline` they are in the session's transaction all the same: committed or rolled back with
    it. What they skip is SQLAlchemy's own: autoflush before them (pending ORM objects are flushed at
    the next statement or at commit instead) and the engine's `*_cursor_execute` events (`echo`)."""
    if not _inline_bind(session.sync_session.get_bind(clause=clause)):
        return None
    connection = await session.connection(bind_arguments={"clause": clause})
    adapter = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    if not isinstance(adapter, _InlineConnection):
        return None
    raw: sqlite3.Connection | None = adapter._connection._connection
    return raw


def run_inline(raw: sqlite3.Connection, sql: str, parameters: Any, *, many: bool = False) -> list[Any] | None:
    """Run `sql` on an inline `sqlite3` connection in its transaction: the rows it returns, or None
    when another process holds the database's lock (the statement had no effect: the caller then
    goes through SQLAlchemy, which waits without blocking the loop). Errors become SQLAlchemy's
    `DBAPIError`s (`IntegrityError` for a key already there), as through the session."""
    return _execute(raw, sql, parameters, many=many)


def _execute(raw: sqlite3.Connection, sql: str, parameters: Any, *, many: bool = False) -> list[Any] | None:
    """`sql` on `raw`: its rows; None when another process holds the lock; SQLAlchemy's errors otherwise."""
    try:
        if many:
            cursor = raw.executemany(sql, parameters)
        else:
            cursor = raw.execute(sql) if parameters is None else raw.execute(sql, parameters)
        try:
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()
    except sqlite3.OperationalError as error:
        if sqlite_inline._busy(error):
            return None
        raise exc.DBAPIError.instance(sql, parameters, error, sqlite3.Error) from error
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(sql, parameters, error, sqlite3.Error) from error


def _inline_bind(bind: object) -> bool:
    dialect = getattr(bind, "dialect", None)
    return isinstance(dialect, InlineSQLiteDialect) or isinstance(getattr(dialect, "loaded_dbapi", None), _InlineDBAPI)


class _InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        super().__init__(sqlite_inline, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _InlineConnection:
        creator = kw.pop("async_creator_fn", None)
        connection = creator(*arg, **kw) if creator is not None else sqlite_inline.connect(*arg, **kw)
        return _InlineConnection(self, await_(connection))


def closes_inline(bind: object) -> bool:
    """True if `bind` (an `AsyncEngine`) runs on the inline driver, where closing a connection or a
    session cannot wait on anything.

    SQLAlchemy's `async with` on an `AsyncConnection` or `AsyncSession` closes it in a task of its
    own, shielded from cancellation, because with a threaded or networked driver the close waits and
    must not be abandoned halfway. That costs two loop turns per transaction, in which everything
    else ready runs first (over HTTP, a request being prepared: a millisecond on the way from the
    outbox to the broker). With the inline driver the close runs to its end without yielding, so the
    bus calls `close()` directly there."""
    return isinstance(bind, AsyncEngine) and _inline_bind(bind)


def inline_dbapi() -> Any:
    """The DB-API object for `create_async_engine("sqlite+aiosqlite://...", module=inline_dbapi())`."""
    return _InlineDBAPI()


class InlineSQLiteDialect(SQLiteDialect_aiosqlite):
    """`sqlite+scte://`: SQLAlchemy's aiosqlite dialect on `scte.bus.sqlite_inline`."""

    driver = "scte"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _InlineDBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    # Savepoints straight on sqlite3 (see `_direct`); inside a transaction they never meet a lock.
    def do_savepoint(self, connection: Any, name: str) -> None:
        if not _direct(connection, f"SAVEPOINT {self.identifier_preparer.quote(name)}"):
            super().do_savepoint(connection, name)  # type: ignore[no-untyped-call]

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        if not _direct(connection, f"RELEASE SAVEPOINT {self.identifier_preparer.quote(name)}"):
            super().do_release_savepoint(connection, name)  # type: ignore[no-untyped-call]

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        if not _direct(connection, f"ROLLBACK TO SAVEPOINT {self.identifier_preparer.quote(name)}"):
            super().do_rollback_to_savepoint(connection, name)  # type: ignore[no-untyped-call]


registry.register("sqlite.scte", __name__, "InlineSQLiteDialect")


def sqlite_engine(
    path: str | Path,
    *,
    pool_size: int = 1,
    busy_timeout: float = 30.0,
    foreign_keys: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine on the SQLite file at `path` (created if missing), run on the event loop's thread.

    `pool_size` connections (one by default: transactions queue for it); `busy_timeout` seconds to
    wait for another process's lock; `foreign_keys` turns on SQLite's foreign key checks. Other
    keyword arguments go to `create_async_engine`."""
    # The inline driver subclasses SQLAlchemy's aiosqlite adapter: with an untested SQLAlchemy release, or
    # SCTE_SPEED_PATHS=off, aiosqlite itself runs (same set-up; a thread hand-off per statement).
    driver = "scte" if speed_paths.enabled(speed_paths.SQLITE_INLINE) else "aiosqlite"
    engine = create_async_engine(
        f"sqlite+{driver}:///{path}",
        connect_args={"timeout": busy_timeout},
        poolclass=pool.AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=300,
        **kwargs,
    )
    configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool = False) -> None:
    """WAL, `synchronous=NORMAL` and `BEGIN IMMEDIATE` for every transaction of a SQLite engine.
    (Also puts `scte.bus.greenlets` in place, as `sessionmaker` does.)"""
    greenlets.install()

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        # Straight on sqlite3 with the inline driver (an execution context costs more than BEGIN);
        # when another process holds the lock, or on another driver, through SQLAlchemy, which waits.
        if not _direct(connection, "BEGIN IMMEDIATE"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class BusSession(AsyncSession):
    """An `AsyncSession` that opens and closes its transactions without a greenlet or a task where
    nothing can wait, on any driver.

    `AsyncSession` runs every step in a greenlet (`greenlet_spawn`: ~6 us with SQLAlchemy's, ~1 us
    with `scte.bus.greenlets`) so that the sync ORM underneath can await the driver, and closes in a
    task of its own shielded from cancellation.
    Two steps of the usual `async with sessions() as s, s.begin():` never touch the database:
    - `begin()`: a session transaction gets its connection lazily, at the first statement; only an
      `after_transaction_create` listener could do I/O there, so with one the ordinary path is taken;
    - the session's close when its transaction has ended (committed or rolled back): it only forgets
      the session's objects; no connection is held any more.
    Together they were a tenth of a one-event publishing transaction. Everything else (statements,
    commit, rollback, a close that must end a transaction) goes the ordinary way."""

    def begin(self) -> AsyncSessionTransaction:
        return _BusSessionTransaction(self)

    async def close(self) -> None:
        if self.sync_session.in_transaction():
            await super().close()
        else:
            self.sync_session.close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if self.sync_session.in_transaction():
            await super().__aexit__(type_, value, traceback)
        else:
            self.sync_session.close()


class _BusSessionTransaction(AsyncSessionTransaction):
    async def start(self, is_ctxmanager: bool = False) -> AsyncSessionTransaction:
        sync = self.session.sync_session
        if self.nested or sync.dispatch.after_transaction_create:
            return await super().start(is_ctxmanager)
        self.sync_transaction = self._assign_proxied(sync.begin())
        if is_ctxmanager:
            self.sync_transaction.__enter__()
        return self


def sessionmaker(engine: AsyncEngine, **kwargs: Any) -> async_sessionmaker[AsyncSession]:
    """`async_sessionmaker` of `BusSession`s, with `expire_on_commit=False` unless given: what a
    service hands to its publishers and consumers. (Typed as making `AsyncSession`s, which they
    are: SQLAlchemy's sessionmaker type is invariant, and the bus's APIs take `AsyncSession`.)

    Puts `scte.bus.greenlets` in place: SQLAlchemy's asyncio calls then reuse their greenlets."""
    greenlets.install()
    kwargs.setdefault("expire_on_commit", False)
    return async_sessionmaker(engine, class_=BusSession, **kwargs)
