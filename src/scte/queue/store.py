"""The SQLite store: one connection, group commit, acknowledged means persisted.

Every engine call is a small piece of work (a function of the connection) submitted to the store.
Work submitted during one turn of the event loop is run together in one transaction, each piece inside
its own savepoint so a failing piece changes nothing, and committed once; only then are the callers
answered. Concurrent callers thus share the cost of a commit and unbatched traffic is fast too.

Why not a dedicated SQLite thread (as first designed): the pieces are a few hundred microseconds of
mostly Python, so a thread gains no parallelism under the GIL and pays a thread hand-off and a loop
wake-up per call; measured, that tripled the cost of a call. The work therefore runs on the event
loop. Only the COMMIT of `durability="full"` (an fsync, milliseconds) goes to a worker thread, and the
loop meanwhile gathers the next group.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
Durability = Literal["normal", "full"]

log = logging.getLogger(__name__)


class StoreClosed(RuntimeError):
    """The store was closed; nothing more is accepted."""


class StoreLocked(RuntimeError):
    """Another process holds the database."""


class Store:
    """Runs work on one SQLite connection in shared transactions (group commit)."""

    def __init__(
        self,
        path: str,
        *,
        durability: Durability = "normal",
        setup: Callable[[sqlite3.Connection], None] | None = None,
        on_failure: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self.durability = durability
        self._setup = setup
        self._on_failure = on_failure
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._committing = False
        self._closed = False
        self._idle: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.transactions = 0
        self.operations = 0

    def start(self) -> None:
        """Open the database (any thread); afterwards the store is used from one event loop."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.5)
        # One broker owns its database: exclusive locking keeps the WAL index in process memory and
        # saves the lock system calls of every transaction (a quarter of a commit's cost), and it
        # keeps a second broker process off the same file.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreLocked(f"{self.path} is in use by another broker process ({exc})") from exc
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durability == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache: memory stays bounded
        conn.execute("PRAGMA busy_timeout=5000")
        if self._setup is not None:
            self._setup(conn)
        self._conn = conn
        if self.durability == "full":
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scte-store-commit")

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `work` for this turn's transaction; the future resolves after its commit."""
        if self._closed or self._conn is None:
            raise StoreClosed("the queue store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, fut))
        if not self._scheduled and not self._committing:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self.submit(work)

    async def close(self) -> None:
        """Finish what was submitted, then close the connection."""
        if self._closed:
            return
        while self._pending or self._scheduled or self._committing:  # noqa: ASYNC110 - one group at most
            await asyncio.sleep(0.001)
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # -- one group ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        conn = self._conn
        assert conn is not None
        results = self._execute(conn, batch)
        if results is None:
            return
        if self._executor is None:
            self._finish(conn, batch, results, None)
            return
        if not conn.in_transaction:  # rolled back: nothing to commit
            self._finish(conn, batch, results, None)
            return
        self._committing = True
        loop = asyncio.get_running_loop()
        commit = loop.run_in_executor(self._executor, conn.execute, "COMMIT")
        commit.add_done_callback(lambda f: self._finish(conn, batch, results, f.exception()))

    def _execute(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]] | None:
        """Run a group. Fast path without savepoints; if any piece fails, roll back and run the
        group again with a savepoint around each piece, so the failure changes nothing."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            results: list[tuple[bool, Any]] = []
            for work, _fut in batch:
                try:
                    results.append((True, work(conn)))
                except Exception as exc:
                    conn.execute("ROLLBACK")
                    if self._on_failure is not None:
                        self._on_failure(conn)  # in-memory state may hold the failed group's changes
                    if len(batch) == 1:
                        return [(False, exc)]
                    return self._execute_isolated(conn, batch)
            return results
        except Exception as exc:  # the database itself failed (disk full, I/O error)
            self._fail(conn, batch, exc)
            return None

    def _execute_isolated(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        for work, _fut in batch:
            conn.execute("SAVEPOINT work")
            try:
                value = work(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO work")
                conn.execute("RELEASE work")
                if self._on_failure is not None:
                    self._on_failure(conn)
                results.append((False, exc))
            else:
                conn.execute("RELEASE work")
                results.append((True, value))
        return results

    def _finish(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[Work, asyncio.Future[Any]]],
        results: list[tuple[bool, Any]],
        commit_error: BaseException | None,
    ) -> None:
        self._committing = False
        if self._executor is None and conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except Exception as exc:
                commit_error = exc
        if commit_error is not None:
            self._fail(conn, batch, commit_error)
        else:
            self.transactions += 1
            self.operations += len(batch)
            for (_work, fut), (ok, value) in zip(batch, results, strict=True):
                if fut.cancelled():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _fail(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]], exc: BaseException
    ) -> None:
        """Nothing of this group is persisted: every caller gets the error, cached state is reloaded."""
        log.error("queue store transaction failed: %s", exc)
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self._on_failure is not None:
                self._on_failure(conn)
        except Exception:
            log.exception("queue store could not recover after a failed transaction")
        for _work, fut in batch:
            if not fut.cancelled():
                fut.set_exception(exc)
