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

Not every piece needs its commit before it is answered. A receive only reserves messages: if the
process dies before the reservation is on disk, the messages are simply visible again after a restart
(as if the visibility timeout had ended early) and at-least-once delivery holds; nothing acknowledged
is lost or revived. Such pieces are submitted with `durable=False`: their group is answered at once
and its transaction stays open, to be committed with the next durable group (a send, a delete) or by
a timer a few milliseconds later. A consumer's receive and delete thus share one commit, which is
most of the cost of a cycle. A later group runs inside a savepoint of the open transaction, so a
failing piece never undoes the reservations already answered.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
Durability = Literal["normal", "full"]

#: How long the reservations of receives may wait for a durable group to commit with (seconds).
DEFERRED_COMMIT_DELAY = 0.005

log = logging.getLogger(__name__)


class Journal(Protocol):
    """Undo of in-memory changes made by the work, kept in step with the transaction."""

    def mark(self) -> int: ...

    def undo(self, mark: int) -> None: ...

    def commit(self) -> None: ...


class _NoJournal:
    def mark(self) -> int:
        return 0

    def undo(self, mark: int) -> None:
        pass

    def commit(self) -> None:
        pass


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
        journal: Journal | None = None,
    ) -> None:
        self.path = path
        self.durability = durability
        self._setup = setup
        self._on_failure = on_failure
        # In-memory state changed by the work (the queues' depth counts): reverted with each rollback,
        # forgotten at each commit.
        self._journal = journal or _NoJournal()
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._pending_durable = False  # some pending piece must be committed before it is answered
        self._deferred: asyncio.TimerHandle | None = None  # commits an answered, uncommitted group
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

    def submit(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> asyncio.Future[T]:
        """Queue `work` for this turn's transaction; the future resolves after its commit, or, with
        `durable=False`, as soon as it has run (its changes are committed with a later group)."""
        if self._closed or self._conn is None:
            raise StoreClosed("the queue store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if not durable and not self._committing:
            self._run_now(work, fut)
            return fut
        self._pending.append((work, fut))
        if durable:
            self._pending_durable = True
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
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self._conn is not None:
            if self._conn.in_transaction:  # reservations answered but not yet committed
                try:
                    self._conn.execute("COMMIT")
                    self._journal.commit()
                except sqlite3.Error:
                    log.exception("queue store could not commit at close")
            self._conn.close()
            self._conn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # -- one group ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        durable, self._pending_durable = self._pending_durable, False
        conn = self._conn
        assert conn is not None
        if not batch and not (durable and conn.in_transaction):
            return
        results = self._execute(conn, batch)
        if results is None:
            return
        if not durable and conn.in_transaction:
            self._answer(batch, results)  # committed with the next durable group, or by the timer
            self._arm_deferred_commit()
            return
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
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

    def _run_now(self, work: Work, fut: asyncio.Future[Any]) -> None:
        """Run a non-durable piece at once, in the open transaction (or a new one), and answer it.

        It costs the caller no loop turn: a consumer's receive and the delete that follows it reach
        the same group, and so the same commit, as the producers' sends of that turn.
        """
        conn = self._conn
        assert conn is not None
        nested = conn.in_transaction
        try:
            conn.execute("SAVEPOINT one" if nested else "BEGIN IMMEDIATE")
        except Exception as exc:  # the database itself failed
            fut.set_exception(exc)
            return
        mark = self._journal.mark()
        try:
            value = work(conn)
        except Exception as exc:
            try:
                self._undo(conn, "one" if nested else None, mark)
            except Exception as failure:
                self._fail(conn, [], failure)
            fut.set_exception(exc)
            return
        if nested:
            conn.execute("RELEASE one")
        self.operations += 1
        fut.set_result(value)
        if not self._pending_durable:  # else the pending durable group commits this too
            self._arm_deferred_commit()

    def _undo(self, conn: sqlite3.Connection, savepoint: str | None, mark: int) -> None:
        """Roll back to `savepoint` (keeping what came before it), or the whole transaction when None;
        the journal back to `mark`, taken with the savepoint."""
        if savepoint is not None:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")
            self._journal.undo(mark)
        else:
            conn.execute("ROLLBACK")
            self._journal.undo(0)
        if self._on_failure is not None:
            self._on_failure(conn)  # in-memory state may hold the undone changes

    def _arm_deferred_commit(self) -> None:
        if self._deferred is None:
            self._deferred = asyncio.get_running_loop().call_later(DEFERRED_COMMIT_DELAY, self._commit_deferred)

    def _commit_deferred(self) -> None:
        """The timer: commit answered reservations when no durable group came to carry them."""
        self._deferred = None
        self._pending_durable = True
        if not self._scheduled and not self._committing and not self._closed:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _execute(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]] | None:
        """Run a group. Fast path without savepoints; if any piece fails, roll back and run the
        group again with a savepoint around each piece, so the failure changes nothing. When an
        answered group's transaction is still open, the group runs in a savepoint of it instead."""
        try:
            nested = conn.in_transaction
            conn.execute("SAVEPOINT grp" if nested else "BEGIN IMMEDIATE")
            mark = self._journal.mark()
            results: list[tuple[bool, Any]] = []
            for work, _fut in batch:
                try:
                    results.append((True, work(conn)))
                except Exception as exc:
                    self._undo(conn, "grp" if nested else None, mark)
                    if len(batch) == 1:
                        return [(False, exc)]
                    return self._execute_isolated(conn, batch)
            if nested:
                conn.execute("RELEASE grp")
            return results
        except Exception as exc:  # the database itself failed (disk full, I/O error)
            self._fail(conn, batch, exc)
            return None

    def _execute_isolated(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        for work, _fut in batch:
            conn.execute("SAVEPOINT work")
            mark = self._journal.mark()
            try:
                value = work(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO work")
                conn.execute("RELEASE work")
                self._journal.undo(mark)
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
            self._journal.commit()
            self.transactions += 1
            self._answer(batch, results)
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _answer(self, batch: list[tuple[Work, asyncio.Future[Any]]], results: list[tuple[bool, Any]]) -> None:
        self.operations += len(batch)
        for (_work, fut), (ok, value) in zip(batch, results, strict=True):
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _fail(
        self, conn: sqlite3.Connection, batch: list[tuple[Work, asyncio.Future[Any]]], exc: BaseException
    ) -> None:
        """Nothing of this group is persisted: every caller gets the error, cached state is reloaded."""
        log.error("queue store transaction failed: %s", exc)
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._journal.undo(0)
            if self._on_failure is not None:
                self._on_failure(conn)
        except Exception:
            log.exception("queue store could not recover after a failed transaction")
        for _work, fut in batch:
            if not fut.cancelled():
                fut.set_exception(exc)
