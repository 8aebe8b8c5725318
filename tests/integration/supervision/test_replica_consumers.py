"""Three processes of one consumer (the reports service, `scte up --replicas reports=3`'s way) on one
FIFO queue: a burst of events, some delivered twice, gives exactly-once effects and keeps each
member's (each FIFO group's) order, on PostgreSQL and on an SQLite file.

Real parts: the embedded broker (`scte queue serve`), the service's own processes and database; the
events are published on the platform's topics as the services' outbox relays publish them
(tests/harness/fleet.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.harness import fleet

from scte.bus.storage import bus_inbox
from scte.bus.transport import OutgoingMessage
from scte.contracts.certification import CertificationAwarded
from scte.contracts.members import MemberRegistered, MemberStatusChanged
from scte.kit.db import create_engine
from scte.kit.testing import database_url
from scte.services.reports.db import award_counts, member_statuses

pytestmark = pytest.mark.slow

REPLICAS = 3
MEMBERS = 24
STATUS_CHANGES = 6  # per member, after the registration: the last one must be the member's status
AWARDS = 12  # per member, on the certification topic
PROGRAMS = ("BPI", "DVEP", "BCT")
CYCLE = ("active", "grace", "lapsed", "active", "grace", "active")


def _member_events(index: int) -> list[MemberRegistered | MemberStatusChanged]:
    member = f"m-{index:03d}"
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index)
    events: list[MemberRegistered | MemberStatusChanged] = [
        MemberRegistered(member_id=member, email=f"{member}@example.org", display_name=member, registered_at=start)
    ]
    previous = "prospect"
    for step in range(STATUS_CHANGES):
        status = CYCLE[(step + index) % len(CYCLE)]
        events.append(
            MemberStatusChanged(
                member_id=member, previous_status=previous, status=status, changed_at=start + timedelta(days=step + 1)
            )
        )
        previous = status
    return events


def _awards(index: int) -> list[CertificationAwarded]:
    member = f"m-{index:03d}"
    out = []
    for n in range(AWARDS):
        awarded = date(2024 + n % 3, 1 + (index + n) % 12, 1 + n)
        out.append(
            CertificationAwarded(
                certification_id=f"c-{index:03d}-{n:02d}",
                member_id=member,
                program=PROGRAMS[(index + n) % len(PROGRAMS)],
                program_name="Program",
                awarded_on=awarded,
                expires_on=awarded.replace(year=awarded.year + 3),
            )
        )
    return out


def _interleaved(per_member: list[list[Any]]) -> list[Any]:
    """Round-robin over the members: the groups' messages mixed on the queue, each group in order."""
    out = []
    for position in range(max(len(events) for events in per_member)):
        out.extend(events[position] for events in per_member if position < len(events))
    return out


def _with_redeliveries(originals: list[OutgoingMessage]) -> tuple[list[OutgoingMessage], int]:
    """`originals`, every fourth one published a second time right after it."""
    messages = []
    again = 0
    for n, message in enumerate(originals):
        messages.append(message)
        if n % 4 == 0:
            messages.append(fleet.redelivered(message, 1))
            again += 1
    return messages, again


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


def _consumer_stats(url: str) -> dict[str, Any]:
    return dict(_get_json(url)["consumer"])


async def _until(condition: Any, what: str, progress: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s; last seen: {progress}")
        await asyncio.sleep(0.5)


@pytest.fixture(params=["postgresql", "sqlite"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path, "reports") as url:
        yield url


@pytest.mark.timeout(600)
async def test_three_replicas_handle_a_burst_once_each_and_in_order_per_member(database: str, tmp_path: Path) -> None:
    members = [_member_events(i) for i in range(MEMBERS)]
    awards = [_awards(i) for i in range(MEMBERS)]
    member_originals = fleet.messages_of(_interleaved(members))
    member_messages, member_again = _with_redeliveries(member_originals)
    award_messages, award_again = _with_redeliveries(fleet.messages_of(_interleaved(awards)))
    events = MEMBERS * (1 + STATUS_CHANGES + AWARDS)

    with fleet.broker(tmp_path / "queue", tmp_path / "logs") as broker_url:
        await fleet.provision(broker_url, ["reports"])
        with fleet.replicas(
            "reports", REPLICAS, data_dir=tmp_path, broker_url=broker_url, database_url=database
        ) as running:
            await fleet.publish(broker_url, ["reports"], "members", member_messages)
            await fleet.publish(broker_url, ["reports"], "certification", award_messages)
            engine = create_engine(database)
            try:

                async def inbox() -> list[Any]:
                    async with engine.connect() as conn:
                        query = select(bus_inbox.c.event_id, bus_inbox.c.processed_at)
                        return list((await conn.execute(query.where(bus_inbox.c.consumer == "reports"))).all())

                async def all_handled() -> bool:
                    stats = [_consumer_stats(url) for url in running.health]
                    progress.update(inbox=len(await inbox()), stats=stats)
                    processed = sum(s["processed"] for s in stats)
                    duplicates = sum(s["duplicates"] for s in stats)
                    return processed >= events and duplicates >= member_again + award_again

                progress: dict[str, Any] = {}
                await _until(all_handled, f"{events} events handled by the replicas", progress, timeout=420)
                assert running.alive()
                # HTTP: the API on replica 0's port only; the others answer /health (and /metrics)
                paths = [set(_get_json(url.replace("/health", "/openapi.json"))["paths"]) for url in running.health]
                assert "/reports" in paths[0], paths[0]
                assert all(p <= {"/health", "/metrics"} for p in paths[1:]), paths
                stats = [_consumer_stats(url) for url in running.health]
                async with engine.connect() as conn:
                    counts = {(r.program, r.month): r.count for r in (await conn.execute(select(award_counts))).all()}
                    statuses = {r.member_id: r.status for r in (await conn.execute(select(member_statuses))).all()}
                rows = await inbox()
            finally:
                await engine.dispose()

    # competing consumers: every replica took a share of the burst
    assert all(s["processed"] > 0 for s in stats), stats
    assert sum(s["dead_lettered"] for s in stats) == 0
    # each event run once in all (the redeliveries recognised by the inbox, whichever replica got them)
    assert sum(s["processed"] for s in stats) == events, stats
    # exactly once: each event is in the inbox once, and each award counted once, redeliveries included
    handled_at = {event_id: at for event_id, at in rows}
    assert len(rows) == len(handled_at) == events
    expected: Counter[tuple[str, str]] = Counter(
        (award.program, award.awarded_on.strftime("%Y-%m")) for per_member in awards for award in per_member
    )
    assert counts == dict(expected)
    assert sum(counts.values()) == MEMBERS * AWARDS
    # FIFO per member: each member's events were handled in the order they were published (a later one
    # never before an earlier one, whichever replica took it), and the last status change is the status
    order: dict[str, list[datetime]] = defaultdict(list)
    for message in member_originals:  # group: the member; deduplication id: the event id (scte.bus.envelope)
        assert message.group_id is not None and message.deduplication_id is not None
        order[message.group_id].append(handled_at[message.deduplication_id])
    for member, times in order.items():
        assert times == sorted(times), f"{member}'s events were handled out of order: {times}"
    assert statuses == {events_[0].member_id: events_[-1].status for events_ in members}


@pytest.mark.timeout(300)
def test_scte_up_refuses_replicas_of_a_service_whose_database_is_in_memory(tmp_path: Path) -> None:
    """Each process would have a database of its own: refused before anything starts, exit 1, the reason."""
    import subprocess
    import sys

    from tests.harness.platform import scte_env, up_ports

    env = scte_env(up_ports(), {"SCTE_SEARCH_DATABASE_URL": "sqlite+aiosqlite:///:memory:"})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scte.cli",
            "up",
            "--data",
            str(tmp_path / "data"),
            "--no-seed",
            "--replicas",
            "search=2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "search's database is an in-memory SQLite database" in " ".join(output.split()), output
    assert not (tmp_path / "data" / "logs").exists()  # no child was started
