"""A service's database: the engine, sessions, and its Alembic migrations run from code.

SQLite (the default, one file per service) is set up for several concurrent transactions: WAL,
foreign keys on, and `BEGIN IMMEDIATE`, so that a transaction takes the write lock when it starts
instead of failing with `database is locked` when a stale read snapshot tries to write. PostgreSQL
needs nothing special.

Migrations live in the service package (`scte/services/<name>/migrations/`, with `env.py` calling
`run_alembic_env("<package>.db")`). `run_migrations(package, url)` upgrades a database to head; the
module is also a small command for service authors:

    python -m scte.kit.db init scte.services.learning          # env.py, script.py.mako, versions/
    python -m scte.kit.db revision scte.services.learning "initial tables"   # autogenerate
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import sys
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import MetaData, Table
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.types import TypeDecorator

from scte.bus.database import configure_sqlite, sqlite_engine
from scte.bus.database import sessionmaker as bus_sessionmaker

__all__ = [
    "create_engine",
    "dialect_insert",
    "init_migrations",
    "migrations_dir",
    "revision",
    "run_alembic_env",
    "run_migrations",
    "serialize",
    "sessionmaker",
    "upgrade",
    "upsert",
]


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`: `sqlite+scte:///path` (the default), `sqlite+aiosqlite:///path` or
    `postgresql+asyncpg://...`.

    For SQLite the file's directory is created, and every connection gets WAL, foreign keys and
    `BEGIN IMMEDIATE` transactions. `sqlite+scte` is the bus's engine (`scte.bus.database.sqlite_engine`):
    SQLite on the event loop's thread, one connection whose transactions queue in asyncio."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return _create_async_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_driver_name() == "scte":
            return sqlite_engine(parsed.database, foreign_keys=True, busy_timeout=30.0, **kwargs)
    connect_args = {"timeout": 30, **kwargs.pop("connect_args", {})}
    engine = _create_async_engine(url, connect_args=connect_args, **kwargs)
    configure_sqlite(engine, foreign_keys=True)  # the set-up of `sqlite_engine`, on this driver
    return engine


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (responses are built after it); the bus's
    `BusSession`, which begins and closes a transaction without SQLAlchemy's greenlet and task."""
    return bus_sessionmaker(engine, expire_on_commit=False)


def dialect_insert(session: AsyncSession) -> Any:
    """The INSERT construct of the session's database, the one with ON CONFLICT (PostgreSQL or SQLite)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def upsert(
    session: AsyncSession, table: Table, values: Mapping[str, Any], keys: Iterable[str], *, update: bool = True
) -> None:
    """Insert a row, or update (or leave, with update=False) the row with the same keys."""
    statement = dialect_insert(session)(table).values(**values)
    key_list = list(keys)
    changes = {k: v for k, v in values.items() if k not in key_list}
    if update and changes:
        await session.execute(statement.on_conflict_do_update(index_elements=key_list, set_=changes))
    else:
        await session.execute(statement.on_conflict_do_nothing(index_elements=key_list))


async def serialize(session: AsyncSession, key: str) -> None:
    """Hold a transaction-scoped lock on `key` (PostgreSQL): handlers of one aggregate running at
    once on different messages would each miss the other's uncommitted change and store a stale
    result. SQLite transactions are serialized already (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sql_text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


# -- migrations ----------------------------------------------------------------------------------------


def migrations_dir(package: str) -> Path:
    """`<package>/migrations` on disk."""
    return Path(str(resources.files(package) / "migrations"))


def _config(package: str, url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir(package)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def run_migrations(package: str, url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` with the package's migrations (blocking; from async
    code use `upgrade`)."""
    from alembic import command

    command.upgrade(_config(package, url), revision)


async def upgrade(package: str, url: str, revision: str = "head") -> None:
    """`run_migrations` in a worker thread (Alembic runs its own event loop for the async driver)."""
    await asyncio.to_thread(run_migrations, package, url, revision)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render custom column types as the type they store, so a migration never imports app code."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl if not isinstance(obj.impl, type) else obj.impl()
        from alembic.autogenerate.render import _repr_type

        return str(_repr_type(impl, autogen_context))
    return False


def run_alembic_env(metadata_module: str, attribute: str = "metadata") -> None:
    """The body of a service's `migrations/env.py`: migrate online with the async driver.

    `metadata_module` is the module holding the service's `MetaData` (the target of autogenerate)."""
    from alembic import context

    module = importlib.import_module(metadata_module)
    target: MetaData = getattr(module, attribute)
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url: run migrations through scte.kit.db.run_migrations")
    sqlite = make_url(url).get_backend_name() == "sqlite"

    def do_run(connection: Any) -> None:
        context.configure(
            connection=connection,
            target_metadata=target,
            render_as_batch=sqlite,  # SQLite alters tables by copying them
            render_item=_render_item,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    # called from async code without `upgrade`: Alembic's loop gets a thread of its own
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()


_ENV_PY = '''"""Alembic environment of {package} (run by scte.kit.db.run_migrations)."""

from scte.kit.db import run_alembic_env

run_alembic_env("{package}.db")
'''

_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


def init_migrations(package: str) -> Path:
    """Create `<package>/migrations` (env.py, script.py.mako, versions/) if missing; its path."""
    root = migrations_dir(package)
    (root / "versions").mkdir(parents=True, exist_ok=True)
    for path, text in (
        (root / "__init__.py", ""),
        (root / "versions" / "__init__.py", ""),
        (root / "env.py", _ENV_PY.format(package=package)),
        (root / "script.py.mako", _MAKO),
    ):
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    return root


def revision(package: str, message: str) -> None:
    """Autogenerate the next revision against a scratch SQLite database at the current head."""
    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        config = _config(package, url)
        command.upgrade(config, "head")
        command.revision(config, message=message, autogenerate=True)


def _main(argv: list[str]) -> int:
    usage = "usage: python -m scte.kit.db init PACKAGE | revision PACKAGE MESSAGE | upgrade PACKAGE URL"
    if len(argv) == 2 and argv[0] == "init":
        print(init_migrations(argv[1]))
    elif len(argv) == 3 and argv[0] == "revision":
        revision(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "upgrade":
        run_migrations(argv[1], argv[2])
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
