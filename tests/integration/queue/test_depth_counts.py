"""The queues' depth counts (scte.queue.depth) against the rows themselves: after every kind of change,
after rollbacks (a failing piece in a group, SNS's savepoints) and after a restart, the O(1) counts equal
what counting the table says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError


async def depth(engine: Engine, name: str) -> tuple[int, int, int]:
    attrs = await engine.get_queue_attributes(
        name,
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    )
    gauges = (await engine.queue_gauges())[name][:3]
    values = (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        int(attrs["ApproximateNumberOfMessagesDelayed"]),
    )
    assert gauges == values
    return values


async def checked(engine: Engine, clock: ManualClock, name: str) -> tuple[int, int, int]:
    """The counts (attributes and gauges alike) compared with counting the rows, on the engine's connection
    (it holds the database exclusively)."""
    values = await depth(engine, name)
    now = int(clock.now() * 1000)
    queue_id = engine._ops.queues[name].id

    def count(conn: sqlite3.Connection) -> tuple[int, int, int]:
        (visible,) = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE queue_id=? AND visible_at<=?", (queue_id, now)
        ).fetchone()
        hidden, in_flight = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(receipt>0), 0) FROM messages WHERE queue_id=? AND visible_at>?",
            (queue_id, now),
        ).fetchone()
        return int(visible), int(in_flight), int(hidden) - int(in_flight)

    assert values == await engine._store.run(count)
    return values


@pytest.mark.parametrize("seed", range(6))
async def test_random_operations_keep_exact_counts(tmp_path: Path, clock: ManualClock, seed: int) -> None:
    rng = random.Random(seed)
    db = tmp_path / "broker.db"
    names = ["std", "dlq"]
    async with Engine(EngineConfig(path=db, clock=clock)) as engine:
        await engine.create_queue("dlq")
        policy = json.dumps({"deadLetterTargetArn": engine.queue_arn("dlq"), "maxReceiveCount": 2})
        await engine.create_queue("std", {"VisibilityTimeout": "5", "RedrivePolicy": policy})
        await engine.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
        names.append("f.fifo")
        held: dict[str, list[str]] = {n: [] for n in names}
        for step in range(300):
            name = rng.choice(names)
            fifo = name.endswith(".fifo")
            action = rng.random()
            if action < 0.3:
                entries = [
                    {"Id": str(i), "MessageBody": f"{step}-{i}"}
                    | ({"MessageGroupId": rng.choice("ab")} if fifo else {})
                    | ({"DelaySeconds": rng.choice([0, 2, 7])} if not fifo and rng.random() < 0.3 else {})
                    for i in range(rng.randint(1, 10))
                ]
                await engine.send_message_batch(name, entries)
            elif action < 0.55:
                got = await engine.receive_message(
                    name, max_number=rng.randint(1, 10), visibility_timeout=rng.choice([None, 0, 1, 3])
                )
                held[name] += [m["ReceiptHandle"] for m in got]
            elif action < 0.7 and held[name]:
                handle = held[name].pop(rng.randrange(len(held[name])))
                with contextlib.suppress(SqsError):  # an expired FIFO handle
                    await engine.delete_message(name, handle)
            elif action < 0.8 and held[name]:
                handle = rng.choice(held[name])
                with contextlib.suppress(SqsError):  # not in flight any more
                    await engine.change_message_visibility(name, handle, rng.choice([0, 2, 10]))
            elif action < 0.83 and name == "dlq":
                await engine.start_message_move_task(engine.queue_arn("dlq"))
                await asyncio.sleep(0.05)
            else:
                clock.advance(rng.choice([0.5, 1, 3, 6]))
            print(step, name, round(action, 3))  # (shown when the check fails)
            await checked(engine, clock, name)
        for name in names:
            await checked(engine, clock, name)
        before = {name: await depth(engine, name) for name in names}
    async with Engine(EngineConfig(path=db, clock=clock)) as engine:  # counted from the rows at start-up
        assert {name: await depth(engine, name) for name in names} == before


async def test_a_failing_piece_in_a_group_leaves_the_counts_exact(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    await engine.send_message("q", "kept")
    # One group: sends that succeed, then a piece that fails after writing (the store rolls the group
    # back and runs each piece again in its own savepoint).

    def fails_after_writing(conn: sqlite3.Connection) -> None:
        engine._ops.send_plain(conn, "q", ["x"], ["undone"])
        raise RuntimeError("boom")

    ok = [engine.send_message_batch("q", [{"Id": "a", "MessageBody": f"m{i}"}]) for i in range(3)]
    failing = engine._store.submit(fails_after_writing)
    results = await asyncio.gather(*ok, failing, return_exceptions=True)
    assert isinstance(results[-1], RuntimeError)
    assert await checked(engine, clock, "q") == (4, 0, 0)


async def test_purge_and_delete_queue_reset_the_counts(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    await engine.send_message_batch("q", [{"Id": str(i), "MessageBody": "m"} for i in range(5)])
    await engine.receive_message("q", max_number=2)
    await engine.send_message("q", "later", delay_seconds=30)
    assert await checked(engine, clock, "q") == (3, 2, 1)
    await engine.purge_queue("q")
    assert await checked(engine, clock, "q") == (0, 0, 0)
    await engine.delete_queue("q")
    clock.advance(61)
    await engine.create_queue("q")
    assert await checked(engine, clock, "q") == (0, 0, 0)


async def test_retention_sweep_lowers_the_counts(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q", {"MessageRetentionPeriod": "60"})
    await engine.send_message_batch("q", [{"Id": str(i), "MessageBody": "m"} for i in range(4)])
    clock.advance(61)
    assert await checked(engine, clock, "q") == (0, 0, 0)


async def test_sns_fan_out_rolled_back_entry_keeps_exact_counts(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("small", {"MaximumMessageSize": "1024"})
    topic = await engine.topics.create_topic("t")
    await engine.topics.subscribe(topic, "sqs", engine.queue_arn("small"), {"RawMessageDelivery": "true"})
    entries: list[dict[str, Any]] = [
        {"Id": "ok", "Message": "short"},
        {"Id": "big", "Message": "x" * 2000},  # refused by the queue's size limit: that entry is undone
    ]
    await engine.topics.publish_batch(topic, entries)
    assert await checked(engine, clock, "small") == (1, 0, 0)
