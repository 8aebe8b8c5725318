"""The members service on SQLite and on the running PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import api_client, database_url, test_settings
from scte.services.members.service import build_runtime


@pytest.fixture(params=["sqlite", "postgresql"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceRuntime]:
    async with database_url(request.param, tmp_path, "members") as url:
        rt = build_runtime(test_settings(tmp_path, database_urls={"members": url}))
        await rt.start(consume=False)
        try:
            yield rt
        finally:
            await rt.stop()


@pytest.fixture
async def client(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(runtime) as c:
        yield c
