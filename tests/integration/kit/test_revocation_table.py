"""The revocation table on SQLite and PostgreSQL: idempotent, epochs only grow, single-session rows
pruned after the retention while epoch rows stay, and the lookup `require_principal` makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from scte.kit import revocation
from scte.kit.auth import Principal
from scte.kit.db import create_engine, sessionmaker
from scte.kit.revocation import (
    ALL_SESSIONS,
    SESSION_ROW_RETENTION,
    RevocationCheck,
    auth_revocations,
    current_epoch,
    include_revocations,
    record_revocation,
)
from scte.kit.testing import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with database_url(request.param, tmp_path, "revocations") as url:
        engine = create_engine(url)
        metadata = MetaData()
        include_revocations(metadata)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        try:
            yield engine
        finally:
            await engine.dispose()


def principal(member: str, session: str, epoch: int = 0) -> Principal:
    return Principal(member, frozenset({"member"}), None, session, epoch)


async def test_revocations_are_idempotent_and_epochs_only_grow(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    check = RevocationCheck(engine)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        for _ in range(2):
            await record_revocation(session, "m1", "s1", 0, now)
            await record_revocation(session, "m1", None, 2, now)
        await record_revocation(session, "m1", None, 1, now)  # an older event, late
        assert await current_epoch(session, "m1") == 2
        assert await current_epoch(session, "m2") == 0
    assert await check(principal("m1", "s1", 2))  # its session is revoked
    assert await check(principal("m1", "s9", 1))  # below the epoch
    assert not await check(principal("m1", "s9", 2))
    assert not await check(principal("m2", "s1", 0))  # the same session id of another member


async def test_single_session_rows_are_pruned_after_the_retention(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = sessionmaker(engine)
    now = datetime.now(UTC)
    old = now - SESSION_ROW_RETENTION - timedelta(minutes=1)
    monkeypatch.setattr(revocation, "_last_prune", [-revocation.PRUNE_EVERY_SECONDS])
    async with sessions() as session, session.begin():
        await record_revocation(session, "m1", "old", 0, old)
        await record_revocation(session, "m1", None, 1, old)
        await record_revocation(session, "m2", "recent", 0, now - timedelta(minutes=5))
    monkeypatch.setattr(revocation, "_last_prune", [-revocation.PRUNE_EVERY_SECONDS])
    async with sessions() as session, session.begin():
        await record_revocation(session, "m3", "new", 0, now)
    async with engine.connect() as conn:
        rows = set((await conn.execute(select(auth_revocations.c.member_id, auth_revocations.c.session_id))).all())
    assert rows == {("m1", ALL_SESSIONS), ("m2", "recent"), ("m3", "new")}
