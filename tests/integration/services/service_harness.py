"""What the integration tests of an event-driven service share: the service's runtime (API, consumer,
relay) on SQLite and on PostgreSQL, the in-process broker, a fixed clock, tokens, and helpers to publish
events to its topics and read what it published. Each service's conftest makes its `service` fixture
with `service_fixture(name, build_runtime)`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from scte.bus.contracts import Event, registry
from scte.bus.envelope import Envelope, encode
from scte.bus.storage import bus_outbox
from scte.bus.transport import OutgoingMessage
from scte.kit.auth import TokenIssuer
from scte.kit.clock import FixedClock
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import api_client, bearer, database_url, issuer, test_settings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Service:
    """The running service under test and what a test does with it."""

    runtime: ServiceRuntime
    client: httpx.AsyncClient
    clock: FixedClock
    tokens: TokenIssuer
    data_dir: Path

    def auth(self, member_id: str, *roles: str, company_id: str | None = None) -> Mapping[str, str]:
        return bearer(self.tokens.issue(member_id, roles or ("member",), company_id))

    def staff(self) -> Mapping[str, str]:
        return self.auth("staff-1", "member", "staff")

    async def publish(self, event: Event, *, topic: str, source: str = "test") -> Envelope:
        """Put an event on a topic of the broker, as its publishing service would."""
        envelope, message = encode(event, source=source)
        assert self.runtime.transport is not None
        await self.runtime.transport.publish(topic, [message])
        return envelope

    async def redeliver(self, event: Event, envelope: Envelope) -> None:
        """Deliver the same envelope (same event id) to the service's queue again, past the broker's
        FIFO deduplication, as SQS may: the bus inbox must make it a no-op."""
        _, message = encode(event, source=envelope.source, id=envelope.id, time=envelope.time)
        assert self.runtime.transport is not None and self.runtime.queue is not None
        fifo = self.runtime.queue.fifo
        again = OutgoingMessage(
            body=message.body,
            attributes=message.attributes,
            group_id=message.group_id if fifo else None,
            deduplication_id=f"again-{envelope.id}" if fifo else None,
        )
        await self.runtime.transport.send(self.runtime.queue.name, [again])

    async def published(self, event_type: str) -> list[Any]:
        """Events of a type this service wrote to its outbox, oldest first."""
        assert self.runtime.context is not None
        async with self.runtime.context.sessionmaker() as session:
            rows = await session.execute(
                select(bus_outbox.c.body).where(bus_outbox.c.event_type == event_type).order_by(bus_outbox.c.id)
            )
            cls = registry.resolve(event_type)
            return [cls.model_validate(json.loads(body)) for (body,) in rows]

    @staticmethod
    async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
        """Wait until `check()` returns something truthy (or raises no AssertionError)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                result = await check()
                if result:
                    return result
            except AssertionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not true within {timeout} s: {check}")
            await asyncio.sleep(0.05)

    async def processed(self) -> int:
        consumer = self.runtime.consumer
        return 0 if consumer is None else consumer.stats.processed + consumer.stats.duplicates


def service_fixture(name: str, build_runtime: Callable[..., ServiceRuntime]) -> Any:
    """A `service` fixture for the service `name`, run once on SQLite and once on PostgreSQL."""

    @pytest.fixture(params=["sqlite", "postgresql"])
    async def service(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[Service]:
        async with database_url(request.param, tmp_path, name) as url:
            monkeypatch.setenv(f"SCTE_{name.upper()}_DATABASE_URL", url)
            try:
                overrides = request.getfixturevalue("settings_overrides")
            except pytest.FixtureLookupError:
                overrides = {}
            settings = test_settings(tmp_path, **overrides)
            tokens = issuer(settings)
            clock = FixedClock(NOW)
            runtime = build_runtime(settings, clock=clock)
            async with runtime, api_client(runtime) as client:
                yield Service(runtime, client, clock, tokens, tmp_path)

    return service


__all__ = ["NOW", "Service", "service_fixture"]
