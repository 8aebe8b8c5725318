"""Helpers for the services' integration tests: databases on SQLite and PostgreSQL, settings, tokens,
and an HTTP client on a service's app.

    @pytest.fixture(params=["sqlite", "postgresql"])
    async def runtime(request, tmp_path):
        async with database_url(request.param, tmp_path) as url:
            settings = test_settings(tmp_path, database_urls={"members": url})
            async with build_runtime(settings) as rt:
                yield rt

    async with api_client(rt) as client:
        token = issuer(rt.settings).issue("m1")
        r = await client.get("/members/m1", headers=bearer(token))
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
from sqlalchemy.engine import make_url

from scte.kit.auth import TokenIssuer, generate_key_pair
from scte.kit.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from scte.kit.runtime import ServiceRuntime

__all__ = [
    "POSTGRES_URL",
    "SKIP_POSTGRES",
    "DatabaseUnavailable",
    "api_client",
    "bearer",
    "database_url",
    "issuer",
    "postgres_database",
    "postgres_unreachable",
    "skip_postgres_on_purpose",
    "test_settings",
]

POSTGRES_URL = os.environ.get("SCTE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
"""The running PostgreSQL the integration tests use; each test gets its own database on it."""

SKIP_POSTGRES = os.environ.get("SCTE_TEST_SKIP_POSTGRES", "") == "1"
"""Set on purpose (`SCTE_TEST_SKIP_POSTGRES=1`) on a machine without PostgreSQL: its tests skip, and the summary
says so. Unset, an unreachable PostgreSQL fails those tests, so a run can never pass with them silently missing."""

SKIP_REASON_PREFIX = "SCTE_TEST_SKIP_POSTGRES=1"
"""Every skip for the reason above starts with this (the summary counts them)."""


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL is not reachable (the tests fail on it unless SCTE_TEST_SKIP_POSTGRES=1)."""


def skip_postgres_on_purpose() -> None:
    """In a PostgreSQL test or fixture: skip it when SCTE_TEST_SKIP_POSTGRES=1, before trying to connect."""
    if SKIP_POSTGRES:
        import pytest

        pytest.skip(f"{SKIP_REASON_PREFIX}: PostgreSQL tests skipped on purpose")


def postgres_unreachable(exc: BaseException, url: str = POSTGRES_URL) -> NoReturn:
    """Fail the test (never skip it): PostgreSQL at `url` did not answer. Skipping needs SCTE_TEST_SKIP_POSTGRES=1."""
    import pytest

    pytest.fail(
        f"PostgreSQL not reachable at {url}: {exc!r}. Start it (or point SCTE_TEST_POSTGRES_URL at one), "
        "or set SCTE_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests on purpose.",
        pytrace=False,
    )


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def postgres_database(base_url: str = POSTGRES_URL) -> AsyncIterator[str]:
    """A fresh database on the server of `base_url`, dropped afterwards; yields its SQLAlchemy URL."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"scte_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"PostgreSQL not reachable at {base_url}: {exc}") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def database_url(kind: str, directory: Path, name: str = "service") -> AsyncIterator[str]:
    """`sqlite`: a file in `directory`; `postgresql`: a fresh database (unreachable: the test fails,
    unless SCTE_TEST_SKIP_POSTGRES=1 skips it)."""
    if kind == "sqlite":
        yield f"sqlite+scte:///{(directory / f'{name}.db').resolve()}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    skip_postgres_on_purpose()
    context = postgres_database()
    unreachable: BaseException | None = None
    try:
        url = await context.__aenter__()
    except DatabaseUnavailable as exc:
        unreachable = exc.__cause__ or exc
    if unreachable is not None:  # outside the except block: the failure shows the one message, not a chain
        postgres_unreachable(unreachable)
    try:
        yield url
    finally:
        await context.__aexit__(None, None, None)


def test_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: data in `data_dir`, the in-process broker, no clock offset."""
    values: dict[str, Any] = {"data_dir": data_dir, "transport": "inprocess", "shutdown_grace_seconds": 2.0}
    values.update(overrides)
    return Settings(**values)


def issuer(settings: Settings) -> TokenIssuer:
    """The token issuer of these settings' key pair (created if missing), to sign test tokens."""
    generate_key_pair(settings.private_key_path, settings.public_key_path)
    return TokenIssuer.from_file(settings.private_key_path)


def bearer(token: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def api_client(
    app_or_runtime: FastAPI | ServiceRuntime, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling the app in-process (no port). A bug in a route raises in the test,
    unless `raise_app_exceptions=False` (then the client sees the 500 answer)."""
    from fastapi import FastAPI

    app = app_or_runtime if isinstance(app_or_runtime, FastAPI) else app_or_runtime.app
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
