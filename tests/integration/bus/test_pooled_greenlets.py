"""`scte.bus.greenlets` installed into SQLAlchemy: sessions of the bus's sessionmaker run their
statements, commits and rollbacks on reused greenlets, on SQLite (inline driver and aiosqlite) and
PostgreSQL (asyncpg); and `uninstall` puts SQLAlchemy's spawner back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from greenlet import getcurrent
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import concurrency as sa_concurrency

from scte.bus import greenlets
from scte.bus.database import sessionmaker, sqlite_engine
from scte.bus.greenlets import greenlet_spawn
from scte.kit.testing import POSTGRES_URL, postgres_unreachable, skip_postgres_on_purpose

# Tests of the speed path itself: `make test-slow-path` (SCTE_SPEED_PATHS=off) deselects them.
pytestmark = pytest.mark.speed_path


@pytest.fixture(params=["inline", "aiosqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Table]]:
    if request.param == "inline":
        engine = sqlite_engine(tmp_path / "g.db")
    elif request.param == "aiosqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    else:
        skip_postgres_on_purpose()
        engine = create_async_engine(POSTGRES_URL)
    table = Table(
        f"pooled_{uuid.uuid4().hex[:12]}",  # test processes run in parallel on one PostgreSQL database
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String),
    )
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
    except OSError as exc:  # PostgreSQL not answering: a failure, unless SCTE_TEST_SKIP_POSTGRES=1 (above)
        postgres_unreachable(exc)
    greenlets.install()  # as the bus's sessionmaker does
    yield engine, table
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.drop_all)
    await engine.dispose()


async def test_sessions_run_their_statements_on_reused_greenlets(db: tuple[AsyncEngine, Table]) -> None:
    engine, table = db
    runs_on: list[Any] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def where(*_: Any) -> None:
        runs_on.append(getcurrent())

    sessions = sessionmaker(engine)
    for n in range(5):
        async with sessions() as session, session.begin():
            await session.execute(insert(table), {"id": n, "name": f"n{n}"})
    async with sessions() as session:
        names = (await session.scalars(select(table.c.name).order_by(table.c.id))).all()
    assert names == ["n0", "n1", "n2", "n3", "n4"]
    assert runs_on and all(isinstance(g, greenlets._Worker) for g in runs_on)
    assert len({id(g) for g in runs_on}) < len(runs_on)  # reused, not one per call


async def test_a_failed_transaction_rolls_back_on_pooled_greenlets(db: tuple[AsyncEngine, Table]) -> None:
    engine, table = db
    sessions = sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(table), {"id": 1, "name": "kept"})
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with sessions() as session, session.begin():
            await session.execute(insert(table), {"id": 2, "name": "rolled back"})
            await session.execute(insert(table), {"id": 1, "name": "clash"})
    async with sessions() as session:
        assert (await session.scalars(select(table.c.name))).all() == ["kept"]


async def test_install_replaces_sqlalchemys_spawner_and_uninstall_restores_it() -> None:
    import sqlalchemy.ext.asyncio.engine as sa_engine
    import sqlalchemy.ext.asyncio.session as sa_session

    greenlets.install()
    try:
        assert greenlets.installed()
        assert sa_session.greenlet_spawn is greenlet_spawn
        assert sa_engine.greenlet_spawn is greenlet_spawn
        greenlets.uninstall()
        assert not greenlets.installed()
        assert sa_session.greenlet_spawn is sa_concurrency.greenlet_spawn
    finally:
        greenlets.install()
