"""The bus's statements straight on `sqlite3` (the inline driver) write the rows SQLAlchemy writes.

`scte.bus.database.inline_sqlite3` lets the publisher's outbox insert and the consumer's inbox row
bypass SQLAlchemy on the inline driver; on any other driver they go through SQLAlchemy. A schema
change to `bus_outbox` or `bus_inbox` must touch both paths: here the same events go through each,
and the stored rows are compared column by column (SQLite's storage class and value), on real files.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scte.bus.contracts import Event, EventRegistry
from scte.bus.database import closes_inline, sessionmaker, sqlite_engine
from scte.bus.envelope import CORRELATION_ID, ID, TIME, TYPE
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.storage import metadata
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import OutgoingMessage, Transport

contracts = EventRegistry()


@contracts.register
class Renewed(Event):
    event_type: ClassVar[str] = "membership.renewed.v1"
    member_id: str
    years: int

    def subject(self) -> str | None:
        return self.member_id


@contracts.register
class Noted(Event):  # no subject: NULL ordering key
    event_type: ClassVar[str] = "activity.noted.v1"
    text: str


TOPOLOGY = Topology(
    topics=(TopicSpec("members", fifo=True), TopicSpec("activity")),
    queues=(
        QueueSpec("billing", fifo=True, subscriptions=(Subscription("members"),)),
        QueueSpec("reports", subscriptions=(Subscription("activity"),)),
    ),
)
_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")  # SQLAlchemy's SQLite DATETIME text


async def _engine(kind: str, path: Path) -> AsyncEngine:
    engine = sqlite_engine(path) if kind == "inline" else create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


def _rows(path: Path, table: str) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        columns = [row["name"] for row in db.execute(f"PRAGMA table_info({table})")]
        select = ", ".join(f"{c}, typeof({c}) AS {c}__type" for c in columns)
        return [dict(row) for row in db.execute(f"SELECT {select} FROM {table} ORDER BY rowid")]


class _Recorder:
    """A transport that takes what the relay publishes (the relay's read of each path's rows)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, OutgoingMessage]] = []

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self.published.extend((topic, m) for m in messages)


async def _publish_all(kind: str, path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, OutgoingMessage]]]:
    engine = await _engine(kind, path)
    assert closes_inline(engine) is (kind == "inline")
    sessions = sessionmaker(engine)
    publisher = Publisher("members", TOPOLOGY)
    try:
        async with sessions() as session, session.begin():
            await publisher.publish(session, Renewed(member_id="m-1", years=2), topic="members")
            await publisher.publish(session, Noted(text="é ünïcode ✓"), topic="activity")
        recorder = _Recorder()
        relay = OutboxRelay(engine, cast(Transport, recorder))
        unmarked: list[int] = []
        assert await relay._round(unmarked) == 2  # the background relay's round (inline: straight on sqlite3)
        await relay._round(unmarked)  # marks them, with the next read
        return _rows(path, "bus_outbox"), recorder.published
    finally:
        await engine.dispose()


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what differs by nature between two runs (ids and times), their shape checked."""
    out = dict(row)
    for column in ("created_at", "sent_at"):
        assert out[f"{column}__type"] == "text" and _TIME.match(out[column]), (column, out[column])
        out.pop(column)
    assert re.fullmatch(r"[0-9a-f-]{36}", out.pop("event_id"))
    attributes = _json(out["attributes"])
    for name in (ID, TIME, CORRELATION_ID):  # the event's id and time, and the id as correlation id
        assert attributes.pop(name)
    out["attributes"] = attributes
    out["deduplication_id__present"] = out.pop("deduplication_id") is not None
    return out


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


@pytest.mark.speed_path
async def test_outbox_rows_and_what_the_relay_reads_back_are_the_same_on_both_paths(tmp_path: Path) -> None:
    inline_rows, inline_sent = await _publish_all("inline", tmp_path / "inline.db")
    plain_rows, plain_sent = await _publish_all("aiosqlite", tmp_path / "plain.db")
    assert len(inline_rows) == len(plain_rows) == 2
    assert [_comparable(r) for r in inline_rows] == [_comparable(r) for r in plain_rows]
    assert inline_rows[0]["subject__type"] == "text" and inline_rows[1]["subject__type"] == "null"
    assert [topic for topic, _ in inline_sent] == [topic for topic, _ in plain_sent]
    for (_, a), (_, b) in zip(inline_sent, plain_sent, strict=True):
        assert a.body == b.body
        assert a.attributes.keys() == b.attributes.keys()
        assert (a.group_id is None) == (b.group_id is None)


@pytest.mark.speed_path
@pytest.mark.parametrize("kind", ["inline", "aiosqlite"])
async def test_an_outbox_row_round_trips_its_message_exactly(kind: str, tmp_path: Path) -> None:
    _rows_written, sent = await _publish_all(kind, tmp_path / "s.db")
    (_, renewed), (_, noted) = sent
    assert _json(renewed.body) == {"member_id": "m-1", "years": 2}
    assert _json(noted.body) == {"text": "é ünïcode ✓"}
    assert renewed.attributes[TYPE] == "membership.renewed.v1"
    assert renewed.group_id == "m-1" and renewed.deduplication_id == renewed.attributes[ID]
