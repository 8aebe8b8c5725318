"""`BusSession` (`scte.bus.database.sessionmaker`): the ordinary `AsyncSession` behaviour, with the
transaction's begin and the session's close taken without a greenlet where nothing can wait; on the
inline SQLite driver and on aiosqlite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from scte.bus.database import BusSession, sessionmaker, sqlite_engine


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


plain = Table("plain", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture(params=["inline", "aiosqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    db = (
        sqlite_engine(tmp_path / "s.db")
        if request.param == "inline"
        else create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    )
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(plain.metadata.create_all)
    yield db
    await db.dispose()


async def _names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(Item.name))).scalars())


async def test_the_usual_transaction_commits_and_leaves_objects_readable(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    async with sessions() as session, session.begin():
        assert isinstance(session, BusSession)
        item = Item(name="a")
        session.add(item)
    assert item.name == "a" and item.id is not None  # expire_on_commit=False
    assert await _names(engine) == {"a"}
    assert not session.sync_session.in_transaction()
    assert item not in session  # closed: the session forgot its objects


async def test_an_error_in_the_block_rolls_back(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            session.add(Item(name="a"))
            await session.flush()
            raise RuntimeError("no")
    assert await _names(engine) == set()


async def test_closing_a_session_with_its_transaction_open_rolls_it_back(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    async with sessions() as session:
        await session.execute(insert(plain).values(name="left open"))
        assert session.sync_session.in_transaction()
    assert not session.sync_session.in_transaction()
    async with engine.connect() as conn:
        assert (await conn.execute(select(plain.c.name))).all() == []
    session = sessions()
    await session.execute(insert(plain).values(name="closed by close()"))
    await session.close()
    async with engine.connect() as conn:
        assert (await conn.execute(select(plain.c.name))).all() == []


async def test_nested_transactions_and_explicit_commits_work_as_in_sqlalchemy(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    async with sessions() as session:
        async with session.begin():
            session.add(Item(name="kept"))
            with pytest.raises(RuntimeError):
                async with session.begin_nested():
                    session.add(Item(name="undone"))
                    await session.flush()
                    raise RuntimeError("inner")
        session.add(Item(name="second"))
        await session.commit()
    assert await _names(engine) == {"kept", "second"}


async def test_a_listener_on_transaction_creation_gets_its_greenlet(engine: AsyncEngine) -> None:
    # Such a listener may do I/O, so `begin()` takes SQLAlchemy's own path when there is one.
    sessions = sessionmaker(engine)
    created: list[str] = []

    def listener(session: Session, transaction: object) -> None:
        if getattr(transaction, "parent", None) is None:
            created.append("root")
            session.connection().exec_driver_sql("SELECT 1")  # I/O: fails outside a greenlet

    event.listen(Session, "after_transaction_create", listener)
    try:
        async with sessions() as session, session.begin():
            session.add(Item(name="a"))
    finally:
        event.remove(Session, "after_transaction_create", listener)
    assert "root" in created
    assert await _names(engine) == {"a"}


async def test_sessionmaker_options_pass_through(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine, expire_on_commit=True, info={"service": "x"})
    session: AsyncSession = sessions()
    assert session.sync_session.info == {"service": "x"}
    assert sessions.kw["expire_on_commit"] is True
    await session.close()
