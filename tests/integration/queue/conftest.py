"""Fixtures for the queue engine's integration tests: a real SQLite file and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scte.queue import Engine, EngineConfig, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def engine(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Engine]:
    async with Engine(EngineConfig(path=tmp_path / "broker.db", clock=clock)) as started:
        yield started
