"""`scte up --database postgresql://…`: each service's own database on one PostgreSQL server.

`scte up` creates the databases that do not exist yet (`<base>_<service>`, `scte.kit.settings.
service_database_url`) before it starts the services; each service then migrates its own on start, as on
SQLite. Creating needs a role allowed to CREATE DATABASE; an operator who made the databases beforehand
needs none. `drop_databases` is for tests and for tearing a trial install down.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import make_url

__all__ = ["DatabaseServerError", "drop_databases", "ensure_databases"]

_MAINTENANCE = ("postgres", "template1")
"""Databases to connect to for CREATE DATABASE when the base one does not exist (every server has them)."""


class DatabaseServerError(RuntimeError):
    """The PostgreSQL server did not answer, or refused what was asked (the message says which)."""


def _dsn(url: str, database: str) -> str:
    out: str = make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)
    return out


def _where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}"


async def _admin(url: str):  # type: ignore[no-untyped-def]  # asyncpg has no types
    """A connection to the server of `url` on a database that exists (its own, else a maintenance one)."""
    import asyncpg  # type: ignore[import-untyped]

    last: BaseException | None = None
    for database in (make_url(url).database or "postgres", *_MAINTENANCE):
        try:
            return await asyncpg.connect(_dsn(url, database), timeout=10)
        except asyncpg.InvalidCatalogNameError as exc:  # that database does not exist: try the next
            last = exc
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise DatabaseServerError(f"PostgreSQL at {_where(url)} did not accept a connection: {exc}") from exc
    raise DatabaseServerError(f"PostgreSQL at {_where(url)}: no database to connect to ({last})")


async def ensure_databases(urls: Iterable[str]) -> list[str]:
    """Create each URL's database where it does not exist (all on one server); the names created."""
    import asyncpg

    wanted = [make_url(u) for u in urls]
    if not wanted:
        return []
    created: list[str] = []
    admin = await _admin(wanted[0].render_as_string(hide_password=False))
    try:
        for url in wanted:
            name = str(url.database)
            if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                continue
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')  # names come from parse_database: [A-Za-z0-9_]
            except asyncpg.DuplicateDatabaseError:
                continue  # another process made it meanwhile
            except asyncpg.PostgresError as exc:
                raise DatabaseServerError(f"PostgreSQL at {_where(str(url))}: CREATE DATABASE {name}: {exc}") from exc
            created.append(name)
    finally:
        await admin.close()
    return created


async def drop_databases(urls: Iterable[str]) -> None:
    """Drop each URL's database if it exists, closing its connections first (PostgreSQL 13+)."""
    wanted = [make_url(u) for u in urls]
    if not wanted:
        return
    admin = await _admin(wanted[0].set(database="postgres").render_as_string(hide_password=False))
    try:
        for url in wanted:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await admin.close()
