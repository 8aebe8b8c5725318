"""Shared fixtures of the learning, certification and commerce integration tests.

`harness(kind, ...)`: a `BusHarness` whose service database is migrated with the service's own
Alembic revisions, on SQLite (the harness's file) or on a fresh PostgreSQL database.
`running(kind, ...)`: the service's real runtime (API, consumer, relay, scheduler) on the in-process
broker, with a fixed clock, and a token issuer for its key pair.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish, Schedule
from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.bus.publisher import OutboxRelay
from scte.bus.scheduler import SchedulerLoop
from scte.bus.scheduler import schedule as schedule_event
from scte.bus.testing import BusHarness
from scte.bus.topology import QueueSpec, Topology
from scte.kit.auth import TokenIssuer
from scte.kit.clock import FixedClock
from scte.kit.db import create_engine, sessionmaker, upgrade
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import api_client, bearer, database_url, issuer, test_settings
from scte.platform import TOPICS

KINDS = ["sqlite", "postgresql"]


@asynccontextmanager
async def harness(
    kind: str,
    directory: Path,
    *,
    service: str,
    metadata: MetaData,
    queue: QueueSpec,
    handlers: Mapping[str | type[Event], Handler],
) -> AsyncIterator[BusHarness]:
    topology = Topology(topics=TOPICS, queues=(queue,))
    bus = BusHarness(topology, source=service, directory=directory, metadata=metadata)
    async with database_url(kind, directory, "service") as url:
        await upgrade(f"scte.services.{service}", url)
        if kind != "sqlite":
            await bus.db.dispose()
            bus.db = create_engine(url)
            bus.sessionmaker = sessionmaker(bus.db)
            bus.relay = OutboxRelay(bus.sessionmaker, bus.transport)
            bus.scheduler = SchedulerLoop(bus.sessionmaker, transport=bus.transport, clock=bus.clock.now)
        await bus.start()
        try:
            bus.consumer(queue.name, handlers, name=service)
            yield bus
        finally:
            await bus.close()


@dataclass
class Tx:
    """A transaction on the harness's database with the service's `publish` and `schedule`."""

    session: AsyncSession
    publish: Publish
    schedule: Schedule


@asynccontextmanager
async def transaction(bus: BusHarness) -> AsyncIterator[Tx]:
    async with bus.sessionmaker() as session, session.begin():

        async def publish(event: Event, *, topic: str) -> Envelope:
            return await bus.publisher.publish(session, event, topic=topic)

        async def schedule(
            event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
        ) -> Envelope:
            return await schedule_event(
                session, event, deliver_at=deliver_at, topic=topic, queue=queue, source=bus.source
            )

        yield Tx(session, publish, schedule)


@dataclass
class Running:
    runtime: ServiceRuntime
    client: httpx.AsyncClient
    issuer: TokenIssuer
    clock: FixedClock

    def as_member(self, member_id: str, *roles: str, company_id: str | None = None) -> Mapping[str, str]:
        return bearer(self.issuer.issue(member_id, roles or ("member",), company_id))

    def staff(self) -> Mapping[str, str]:
        return self.as_member("staff-1", "member", "staff")


@asynccontextmanager
async def running(
    kind: str,
    directory: Path,
    *,
    service: str,
    build_runtime: Callable[..., ServiceRuntime],
    at: datetime,
    **options: Any,
) -> AsyncIterator[Running]:
    async with database_url(kind, directory, service) as url:
        settings = test_settings(directory, database_urls={service: url})
        tokens = issuer(settings)
        clock = FixedClock(at)
        runtime = build_runtime(settings, clock=clock, **options)
        async with runtime, api_client(runtime) as client:
            yield Running(runtime, client, tokens, clock)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """A refusal with the platform's error body (a code and a message for a person)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("message"), str) and body["message"]
    return body
