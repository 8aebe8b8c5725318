"""The inline SQLite driver (`scte.bus.sqlite_inline`) and the engine built on it (`sqlite_engine`)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from scte.bus import sqlite_inline
from scte.bus.database import inline_dbapi, sqlite_engine

md = MetaData()
items = Table("items", md, Column("id", Integer, primary_key=True), Column("name", String, unique=True))
counters = Table("counters", md, Column("id", Integer, primary_key=True), Column("value", Integer, nullable=False))


# -- the driver --------------------------------------------------------------------------------------------


async def test_the_aiosqlite_api(tmp_path: Path) -> None:
    db = await sqlite_inline.connect(tmp_path / "a.db")
    try:
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        cursor = await db.executemany("INSERT INTO t (name) VALUES (?)", [("a",), ("b",), ("c",)])
        assert cursor.rowcount == 3
        await db.commit()
        async with db.execute("SELECT name FROM t ORDER BY id") as cursor:
            assert await cursor.fetchone() == ("a",)
            assert await cursor.fetchmany(1) == [("b",)]
            assert await cursor.fetchall() == [("c",)]
        cursor = await db.cursor()
        await cursor.execute("SELECT count(*) FROM t WHERE name > ?", ("a",))
        assert [row async for row in cursor] == [(2,)]
        await cursor.close()
        await db.execute("INSERT INTO t (name) VALUES ('d')")
        assert db.in_transaction
        await db.rollback()
        assert await db.execute_fetchall("SELECT count(*) FROM t") == [(3,)]
        with pytest.raises(sqlite_inline.OperationalError):
            await db.execute("SELECT * FROM missing")
    finally:
        await db.close()
    await db.close()  # idempotent
    with pytest.raises(ValueError, match="no active connection"):
        db.cursor()


async def test_statements_run_on_the_loops_thread(tmp_path: Path) -> None:
    threads: list[int] = []

    def where() -> int:
        threads.append(threading.get_ident())
        return 1

    async with sqlite_inline.connect(tmp_path / "a.db") as db:
        await db.create_function("where_am_i", 0, where)
        assert await db.execute_fetchall("SELECT where_am_i()") == [(1,)]
    assert threads == [threading.get_ident()]


async def test_a_lock_held_by_another_process_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    other = sqlite3.connect(path, isolation_level=None)  # stands for another process
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    ticks = 0
    released = False

    async def ticker() -> None:
        # The other process lets go only after the loop has turned 10 times: were the waiting BEGIN
        # blocking the loop, this would never run and the BEGIN would time out (5 s) instead.
        nonlocal ticks, released
        while ticks < 10:
            await asyncio.sleep(0.005)
            ticks += 1
        other.commit()
        released = True

    ticking: asyncio.Task[None] | None = None
    try:
        async with sqlite_inline.connect(path, timeout=5, isolation_level=None) as db:
            ticking = asyncio.create_task(ticker())  # first runs when the BEGIN below waits
            await db.execute("BEGIN IMMEDIATE")
            assert released  # it waited for the lock, while the loop ran
            await db.execute("INSERT INTO t VALUES (1)")
            await db.commit()
    finally:
        if ticking is not None:
            ticking.cancel()
        other.close()
    assert ticks == 10


async def test_a_lock_held_too_long_times_out(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    try:
        async with sqlite_inline.connect(path, timeout=0.1, isolation_level=None) as db:
            with pytest.raises(sqlite_inline.OperationalError, match="locked"):
                await db.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


# -- the engine ------------------------------------------------------------------------------------------


async def test_engine_transactions_savepoints_and_errors(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "s.db")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 1  # NORMAL
        async with sessions() as session, session.begin():
            await session.execute(insert(items).values(name="kept"))
            with pytest.raises(IntegrityError):
                async with session.begin_nested():  # a savepoint rolls back alone
                    await session.execute(insert(items).values(name="inner"))
                    await session.execute(insert(items).values(name="kept"))
            async with session.begin_nested():
                await session.execute(insert(items).values(name="released"))
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                await session.execute(insert(items).values(name="rolled back"))
                raise RuntimeError
        async with engine.connect() as conn:  # AsyncConnection.execute insists on an await: it gets one
            names = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
        assert names == ["kept", "released"]
        with pytest.raises(OperationalError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM missing"))
    finally:
        await engine.dispose()


@pytest.mark.speed_path
async def test_begin_and_savepoints_go_straight_to_sqlite(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE, SAVEPOINT, RELEASE and ROLLBACK TO skip SQLAlchemy's execution context (they
    cost more there than the statements they protect) and behave the same: nested savepoints roll
    back alone, the outer transaction commits the rest."""
    engine = sqlite_engine(tmp_path / "s.db")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    seen: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2].split()[0]))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
        seen.clear()
        async with sessions() as session, session.begin(), session.begin_nested():
            await session.execute(insert(items).values(name="outer"))
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await session.execute(insert(items).values(name="inner"))
                    await session.execute(insert(items).values(name="outer"))
            async with session.begin_nested():
                await session.execute(insert(items).values(name="second"))
        assert set(seen) == {"INSERT"}  # no BEGIN, SAVEPOINT, RELEASE or ROLLBACK through SQLAlchemy
        async with engine.connect() as conn:
            names = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
        assert names == ["outer", "second"]
    finally:
        await engine.dispose()


async def test_concurrent_sessions_queue_for_the_connection(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "s.db")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            await conn.execute(insert(counters).values(id=1, value=0))

        async def increment() -> None:  # read, yield to the others, write: lost updates if not serialized
            async with sessions() as session, session.begin():
                value = await session.scalar(select(counters.c.value).where(counters.c.id == 1))
                await asyncio.sleep(0)
                await session.execute(update(counters).where(counters.c.id == 1).values(value=int(value or 0) + 1))

        await asyncio.gather(*(increment() for _ in range(50)))
        async with sessions() as session:
            assert await session.scalar(select(counters.c.value)) == 50
    finally:
        await engine.dispose()


@pytest.mark.speed_path
async def test_two_engines_on_one_file_wait_for_each_other(tmp_path: Path) -> None:
    """Two engines stand for two processes: the second waits (asynchronously) for the first's commit."""
    first, second = sqlite_engine(tmp_path / "s.db"), sqlite_engine(tmp_path / "s.db", busy_timeout=5)
    try:
        async with first.begin() as conn:
            await conn.run_sync(md.create_all)
        order: list[str] = []
        holding = asyncio.Event()  # not a fixed sleep: on a loaded machine the first may take longer to get there

        async def slow_writer() -> None:
            async with first.begin() as conn:
                await conn.execute(insert(items).values(name="first"))
                order.append("first holds the lock")
                holding.set()
                await asyncio.sleep(0.2)
            order.append("first committed")

        async def writer() -> None:
            await holding.wait()
            async with second.begin() as conn:
                order.append("second began")
                await conn.execute(insert(items).values(name="second"))

        await asyncio.gather(slow_writer(), writer())
        assert order == ["first holds the lock", "first committed", "second began"]
    finally:
        await first.dispose()
        await second.dispose()


async def test_url_and_module_forms(tmp_path: Path) -> None:
    for engine in (
        create_async_engine(f"sqlite+scte:///{tmp_path / 'u.db'}"),
        create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", module=inline_dbapi()),
    ):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(md.create_all)
                await conn.execute(insert(items), [{"name": "a"}, {"name": "b"}])  # executemany
            async with engine.connect() as conn:
                assert (await conn.execute(select(items.c.name).order_by(items.c.name))).scalars().all() == ["a", "b"]
                raw = await conn.get_raw_connection()
                assert isinstance(raw.driver_connection, sqlite_inline.Connection)
        finally:
            await engine.dispose()
