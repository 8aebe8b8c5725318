"""The store's commit rules on a real SQLite file: durable pieces are answered after their commit,
reservations (durable=False) at once, and those are committed with the next durable group or by a timer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scte.queue import store as store_module
from scte.queue.store import Store


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT PRIMARY KEY)")


def _insert(value: str) -> store_module.Work:
    return lambda c: c.execute("INSERT INTO t (v) VALUES (?)", (value,)).rowcount


def _stored(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {v for (v,) in conn.execute("SELECT v FROM t")}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    started = Store(str(tmp_path / "s.db"), setup=_setup)
    started.start()
    yield started
    await started.close()


async def test_a_reservation_is_answered_at_once_and_committed_by_the_timer(store: Store, tmp_path: Path) -> None:
    fut = store.submit(_insert("r"), durable=False)
    assert fut.done() and fut.result() == 1  # no loop turn, no commit waited for
    assert store._conn is not None and store._conn.in_transaction
    assert store.transactions == 0
    await asyncio.sleep(store_module.DEFERRED_COMMIT_DELAY * 4)
    assert not store._conn.in_transaction
    assert store.transactions == 1
    await store.close()
    assert _stored(tmp_path / "s.db") == {"r"}


async def test_a_reservation_rides_on_the_next_durable_commit(store: Store, tmp_path: Path) -> None:
    store.submit(_insert("r"), durable=False)
    assert await store.run(_insert("d")) == 1
    assert store.transactions == 1  # one commit carried both
    assert store._conn is not None and not store._conn.in_transaction
    await store.close()
    assert _stored(tmp_path / "s.db") == {"r", "d"}


async def test_a_failing_piece_does_not_undo_an_answered_reservation(store: Store, tmp_path: Path) -> None:
    store.submit(_insert("r"), durable=False)
    good = store.submit(_insert("g"))
    bad = store.submit(_insert("r"))  # primary key taken: fails
    assert await good == 1
    with pytest.raises(sqlite3.IntegrityError):
        await bad
    await store.close()
    assert _stored(tmp_path / "s.db") == {"r", "g"}


async def test_a_failing_reservation_changes_nothing(store: Store, tmp_path: Path) -> None:
    store.submit(_insert("r"), durable=False)

    def half_then_fail(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t (v) VALUES ('half')")
        raise RuntimeError("boom")

    failed = store.submit(half_then_fail, durable=False)
    with pytest.raises(RuntimeError):
        failed.result()
    await store.close()
    assert _stored(tmp_path / "s.db") == {"r"}


async def test_close_commits_answered_reservations(store: Store, tmp_path: Path) -> None:
    store.submit(_insert("r"), durable=False)
    await store.close()
    assert _stored(tmp_path / "s.db") == {"r"}
