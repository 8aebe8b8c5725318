"""The two switches of `scte up` (`--broker`, `--database`), read without the services' libraries: the
supervisor checks them and keeps no pydantic or SQLAlchemy for it (`scte.kit.settings` re-exports them)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["BROKERS", "parse_broker", "parse_database"]

BROKERS = ("embedded", "aws")
"""The named brokers; any other value of `SCTE_BROKER` (`scte up --broker`) is an SQS/SNS endpoint URL."""


def parse_broker(value: str) -> str:
    """`embedded`, `aws` or an http(s) URL with a host (its trailing `/` dropped); else a ValueError that says
    what is accepted."""
    given = value.strip()
    if given.lower() in BROKERS:
        return given.lower()
    parsed = urlsplit(given)
    if parsed.scheme in ("http", "https") and parsed.hostname and not parsed.query and not parsed.fragment:
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            pass
        else:
            return given.rstrip("/")
    raise ValueError(
        f"broker {value!r}: expected `embedded` (the platform's own broker), `aws` (AWS with the SDK's "
        "credential chain and region) or the http(s) URL of an SQS/SNS endpoint, e.g. http://127.0.0.1:5000"
    )


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def parse_database(value: str) -> str:
    """`sqlite`, or a PostgreSQL server URL (`postgresql://user[:password]@host[:port]/base`) as SQLAlchemy's
    asyncpg URL; the base name (default `scte`) prefixes each service's database. Else a ValueError."""
    given = value.strip()
    if given.lower() == "sqlite":
        return "sqlite"
    from sqlalchemy.engine import make_url  # here: `scte up` reads its switches without SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(given)
    except ArgumentError:
        url = None
    if url is not None and url.drivername in _POSTGRES_SCHEMES and url.host:
        base = url.database or "scte"
        if base.replace("_", "").isalnum() and base.isascii() and len(base) <= 40:
            rendered: str = url.set(drivername="postgresql+asyncpg", database=base).render_as_string(
                hide_password=False
            )
            return rendered
    shown = url.render_as_string(hide_password=True) if url is not None else given.rsplit("@", 1)[-1]
    raise ValueError(
        f"database {shown!r}: expected `sqlite` (one file per service in the data directory) or a PostgreSQL "
        "server as postgresql://USER[:PASSWORD]@HOST[:PORT]/BASE (each service gets its own database BASE_<service>; "
        "BASE: letters, digits and _, at most 40)"
    )
