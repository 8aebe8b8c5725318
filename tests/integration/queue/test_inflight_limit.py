"""The in-flight limit (SQS: about 120,000 messages received and not yet deleted or visible again, per
queue): a receive past it is answered `OverLimit`; one that would pass it gets only what fits.
Small limits make the cases quick; one test fills the real default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError
from scte.queue.operations import INFLIGHT_LIMIT

LIMIT = 25


@pytest.fixture
async def limited(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Engine]:
    async with Engine(EngineConfig(path=tmp_path / "broker.db", clock=clock, inflight_limit=LIMIT)) as engine:
        yield engine


async def send(engine: Engine, name: str, count: int, **entry: str) -> None:
    for first in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{first + i}", **entry} for i in range(min(10, count - first))]
        result = await engine.send_message_batch(name, entries)
        assert not result["Failed"]


async def receive(engine: Engine, name: str, count: int = 10) -> list[dict[str, object]]:
    return await engine.receive_message(name, max_number=count)


async def over_limit(engine: Engine, name: str, **kwargs: int) -> SqsError:
    with pytest.raises(SqsError) as info:
        await engine.receive_message(name, max_number=10, **kwargs)
    assert info.value.code == "OverLimit"
    assert str(LIMIT) in info.value.message
    return info.value


async def in_flight(engine: Engine, name: str) -> int:
    attrs = await engine.get_queue_attributes(name, ["ApproximateNumberOfMessagesNotVisible"])
    return int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def test_a_receive_gets_what_fits_then_over_limit(limited: Engine) -> None:
    await limited.create_queue("q")
    await send(limited, "q", 40)
    assert len(await receive(limited, "q")) == 10
    assert len(await receive(limited, "q")) == 10
    assert len(await receive(limited, "q")) == 5  # 5 of the 10 asked for fit
    await over_limit(limited, "q")
    assert await in_flight(limited, "q") == LIMIT
    other = "other"  # the limit is per queue
    await limited.create_queue(other)
    await send(limited, other, 3)
    assert len(await receive(limited, other)) == 3


async def test_deletes_make_room_again(limited: Engine, clock: ManualClock) -> None:
    await limited.create_queue("q")
    await send(limited, "q", 40)
    held = [m for _ in range(3) for m in await receive(limited, "q")]
    assert len(held) == LIMIT
    for message in held[:10]:
        await limited.delete_message("q", str(message["ReceiptHandle"]))
    # The in-flight count is exact (scte.queue.depth): room at once.
    assert len(await receive(limited, "q")) == 10
    await over_limit(limited, "q")


async def test_expired_reservations_make_room_again(limited: Engine, clock: ManualClock) -> None:
    await limited.create_queue("q", {"VisibilityTimeout": "30"})
    await send(limited, "q", 30)
    for _ in range(3):
        await receive(limited, "q")
    await over_limit(limited, "q")
    clock.advance(31)  # every reservation ran out: nothing in flight
    assert await in_flight(limited, "q") == 0
    assert len(await receive(limited, "q")) == 10


async def test_released_messages_make_room_again(limited: Engine, clock: ManualClock) -> None:
    await limited.create_queue("q")
    await send(limited, "q", 30)
    held = [m for _ in range(3) for m in await receive(limited, "q")]
    await over_limit(limited, "q")
    for message in held[:4]:
        await limited.change_message_visibility("q", str(message["ReceiptHandle"]), 0)
    assert len(await receive(limited, "q")) == 4


async def test_a_long_poll_at_the_limit_answers_at_once(limited: Engine, clock: ManualClock) -> None:
    await limited.create_queue("q")
    await send(limited, "q", 30)
    for _ in range(3):
        await receive(limited, "q")
    before = clock.now()
    await over_limit(limited, "q", wait_time_seconds=20)
    assert clock.now() == before  # no wait for messages that could not be handed out anyway


async def test_fifo_queues_have_the_limit_too(limited: Engine) -> None:
    await limited.create_queue("q.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    for group in range(30):
        await limited.send_message("q.fifo", f"m{group}", group_id=f"g{group}")
    taken = 0
    for _ in range(3):
        taken += len(await receive(limited, "q.fifo"))
    assert taken == LIMIT
    await over_limit(limited, "q.fifo")


async def test_purge_empties_what_was_in_flight(limited: Engine) -> None:
    await limited.create_queue("q")
    await send(limited, "q", 30)
    for _ in range(3):
        await receive(limited, "q")
    await over_limit(limited, "q")
    await limited.purge_queue("q")
    await send(limited, "q", 5)
    assert len(await receive(limited, "q")) == 5


async def test_the_limit_holds_across_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    config = EngineConfig(path=tmp_path / "broker.db", clock=clock, inflight_limit=LIMIT)
    async with Engine(config) as engine:
        await engine.create_queue("q", {"VisibilityTimeout": "3600"})
        await send(engine, "q", 30)
        for _ in range(3):
            await receive(engine, "q")
    async with Engine(config) as engine:  # in flight is counted from the file, not remembered
        await over_limit(engine, "q")


def test_the_default_is_sqs_limit() -> None:
    assert EngineConfig().inflight_limit == INFLIGHT_LIMIT == 120_000


@pytest.mark.slow
async def test_the_default_limit_with_120000_messages_in_flight(engine: Engine) -> None:
    await engine.create_queue("big", {"VisibilityTimeout": "43200"})
    await send(engine, "big", INFLIGHT_LIMIT + 10)
    taken = 0
    while taken < INFLIGHT_LIMIT:
        got = await receive(engine, "big")
        assert got, f"only {taken} received"
        taken += len(got)
    assert taken == INFLIGHT_LIMIT
    with pytest.raises(SqsError) as info:
        await engine.receive_message("big", max_number=10)
    assert info.value.code == "OverLimit"
    attrs = await engine.get_queue_attributes("big", ["ApproximateNumberOfMessages"])
    assert attrs["ApproximateNumberOfMessages"] == "10"  # still there, just not handed out
