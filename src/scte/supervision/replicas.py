"""Several processes of one service: `scte up --replicas notifications=3,search=2`.

The replicas of a service are competing consumers of its one queue: the broker hands each message to
one of them (and, on a FIFO queue, holds a message group's next message until the one in flight is
deleted, so a group's order holds whichever replica takes it). Effects stay exactly once because a
handler's writes and its inbox row `(consumer, event id)` commit in one transaction of the service's
one database, whichever process runs it (`scte.bus.consumer`).

HTTP: only replica 0 serves the service's API, on the service's port (the gateway's target). Replicas
1..N-1 serve `/health` alone, each on a loopback port of its own (`SCTE_REPLICA_PORT`), which is how
the supervisor knows they are ready. Not SO_REUSEPORT for the API: some services keep state of their
HTTP side in the process (members counts failed sign-ins per account and per address in memory), and
the kernel spreading requests over N processes would give each caller N fresh windows; and a shared
port could not tell the supervisor which replica is healthy. What is scaled is the consumer.

The database: on PostgreSQL any service may run replicas. On SQLite too, as long as the database is a
file (not `:memory:`, which each process would have its own of): every service's SQLite database is
opened in WAL mode with `BEGIN IMMEDIATE` transactions, so the replicas' write transactions take the
file's one write lock in turn (the bus's driver waits for another process's lock without blocking its
event loop), and the outbox relays of several replicas can at worst publish a row twice, which the
FIFO topics' deduplication and every consumer's inbox absorb. SQLite replicas share one machine's
disk and one writer: they help a service whose handlers spend their time outside the database
(sending mail, decoding images, broker round trips), not one that only writes.

Replica 0 starts first and becomes healthy (it migrates the database and runs the service's start-up
work) before the others start, so no two processes migrate one database at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "MAX_REPLICAS",
    "ReplicasError",
    "check_database",
    "format_replicas",
    "parse_replicas",
    "replica_environment",
    "replica_name",
]

MAX_REPLICAS = 16
"""More processes of one service than this is a typo on a machine this platform runs on."""


class ReplicasError(ValueError):
    """A `--replicas` value that cannot be honoured; the message says why."""


def parse_replicas(spec: str | None, services: Iterable[str]) -> dict[str, int]:
    """`"notifications=3,search=2"` -> `{"notifications": 3, "search": 2}`, checked against `services`.

    Each item is `SERVICE=COUNT` with COUNT a whole number from 1 to MAX_REPLICAS; a service named
    twice, an unknown one or a malformed item raises ReplicasError. None or "" means no replicas."""
    known = list(services)
    counts: dict[str, int] = {}
    if spec is None or not spec.strip():
        return counts
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise ReplicasError(f"--replicas {spec!r}: an empty item (expected SERVICE=COUNT,SERVICE=COUNT)")
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ReplicasError(f"--replicas: {item!r} is not SERVICE=COUNT (e.g. notifications=3)")
        if name not in known:
            raise ReplicasError(f"--replicas: unknown service {name!r} (services: {', '.join(known)})")
        if name in counts:
            raise ReplicasError(f"--replicas: {name} is named twice")
        try:
            count = int(value, 10)
        except ValueError:
            raise ReplicasError(f"--replicas: {name}={value!r}: the count must be a whole number") from None
        if not 1 <= count <= MAX_REPLICAS:
            raise ReplicasError(f"--replicas: {name}={count}: the count must be from 1 to {MAX_REPLICAS}")
        counts[name] = count
    return counts


def format_replicas(counts: Mapping[str, int]) -> str:
    """The `--replicas` value of `counts` (the inverse of `parse_replicas`)."""
    return ",".join(f"{name}={count}" for name, count in counts.items())


def replica_name(service: str, index: int) -> str:
    """The child's name: the service's own for replica 0 (the one serving its API), `<service>-<index>`
    for the others (their log is `logs/<service>-<index>.log`)."""
    return service if index == 0 else f"{service}-{index}"


def replica_environment(index: int, port: int) -> dict[str, str]:
    """What a replica other than 0 gets on top of the service's environment: its index, and the
    loopback port of its `/health`."""
    if index < 1:
        raise ValueError("replica 0 is the service itself and needs nothing more")
    return {"SCTE_REPLICA": str(index), "SCTE_REPLICA_PORT": str(port)}


def check_database(service: str, url: str) -> None:
    """Raise ReplicasError when several processes of `service` cannot share its database `url`:
    an in-memory SQLite database (each process would have one of its own), or a URL that names no
    database SQLAlchemy knows."""
    # here, not at the top: the supervisor imports this module and keeps no SQLAlchemy (issue 16)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:  # not the URL in the message: it may hold a password
        raise ReplicasError(f"--replicas: {service}'s database URL cannot be read") from None
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or parsed.database == ":memory:"):
        raise ReplicasError(
            f"--replicas: {service}'s database is an in-memory SQLite database, which each process would have "
            "its own copy of; give it a file or PostgreSQL (SCTE_<SERVICE>_DATABASE_URL)"
        )
