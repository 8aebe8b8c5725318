"""The bus on its plain paths (`SCTE_SPEED_PATHS=off`): SQLAlchemy's own greenlet spawner and aiosqlite, as an
installation beside other SQLAlchemy releases runs it. A real small run: publish, relay, consume, publish again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from scte import speed_paths
from scte.bus import greenlets
from scte.bus.contracts import Event, EventRegistry
from scte.bus.testing import BusHarness
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology

contracts = EventRegistry()


@contracts.register
class Asked(Event):
    event_type: ClassVar[str] = "plain.asked.v1"
    key: str


@contracts.register
class Answered(Event):
    event_type: ClassVar[str] = "plain.answered.v1"
    key: str


TOPOLOGY = Topology(
    topics=(TopicSpec("asks"), TopicSpec("answers")),
    queues=(QueueSpec("answerer", subscriptions=(Subscription("asks"),)),),
)


@pytest.fixture
def plain_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    was_installed = greenlets.installed()
    monkeypatch.setenv(speed_paths.ENV, "off")
    speed_paths.reset()
    greenlets.uninstall()
    yield
    monkeypatch.undo()
    speed_paths.reset()
    if was_installed:
        greenlets.install()


async def test_the_bus_runs_on_the_plain_paths(plain_paths: None) -> None:
    seen: list[str] = []

    async def handler(event: Asked, publish) -> None:  # type: ignore[no-untyped-def]
        seen.append(event.key)
        await publish(Answered(key=event.key), topic="answers")

    async with BusHarness(TOPOLOGY, contracts, source="plain") as bus:
        assert bus.db.dialect.driver == "aiosqlite"
        assert not greenlets.installed()

        bus.consumer("answerer", {Asked: handler})
        for key in ("a", "b", "c"):
            await bus.publish(Asked(key=key), topic="asks")
        await bus.run_until_idle()
        assert sorted(seen) == ["a", "b", "c"]
        assert sorted(e.key for e in bus.published(Answered)) == ["a", "b", "c"]
        assert await bus.dead_letters("answerer") == []
        assert not greenlets.installed()
