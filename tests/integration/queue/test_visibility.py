"""Visibility timeouts, delays, retention, long polling and durability of the queue engine.

Time comes from the ManualClock: a test moves it forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError

COUNT_NAMES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


async def counts(engine: Engine, name: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed)."""
    attrs = await engine.get_queue_attributes(name, COUNT_NAMES)
    visible, inflight, delayed = (int(attrs[n]) for n in COUNT_NAMES)
    return visible, inflight, delayed


async def receive_one(engine: Engine, name: str, **kwargs: Any) -> dict[str, Any]:
    messages = await engine.receive_message(name, attribute_names=["All"], **kwargs)
    assert len(messages) == 1, messages
    return messages[0]


async def settle(task: asyncio.Task[Any], rounds: int = 20) -> None:
    """Let the event loop run a few turns so `task` reaches its await point (no real time passes)."""
    for _ in range(rounds):
        if task.done():
            return
        await asyncio.sleep(0)


# -- visibility timeout ------------------------------------------------------------------------------


async def test_received_message_is_hidden_until_timeout_then_returns(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "30"})
    sent = await engine.send_message("q", "hello")

    first = await receive_one(engine, "q")
    assert first["MessageId"] == sent["MessageId"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert await engine.receive_message("q") == []
    assert await counts(engine, "q") == (0, 1, 0)

    clock.advance(29)
    assert await engine.receive_message("q") == []

    clock.advance(1.5)
    second = await receive_one(engine, "q")
    assert second["MessageId"] == sent["MessageId"]
    assert second["Body"] == "hello"
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert (
        second["Attributes"]["ApproximateFirstReceiveTimestamp"]
        == first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    )


async def test_receive_visibility_override(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "30"})
    await engine.send_message("q", "m")

    await receive_one(engine, "q", visibility_timeout=5)
    clock.advance(4)
    assert await engine.receive_message("q") == []
    clock.advance(1.5)
    again = await receive_one(engine, "q", visibility_timeout=100)
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    clock.advance(60)  # longer than the queue's 30 s
    assert await engine.receive_message("q") == []
    clock.advance(41)
    await receive_one(engine, "q")


async def test_receive_visibility_zero_leaves_message_visible(engine: Engine):
    await engine.create_queue("q")
    await engine.send_message("q", "m")
    first = await receive_one(engine, "q", visibility_timeout=0)
    second = await receive_one(engine, "q", visibility_timeout=0)
    assert first["MessageId"] == second["MessageId"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize("value", [-1, 43201])
async def test_receive_visibility_out_of_range(engine: Engine, value: int):
    await engine.create_queue("q")
    with pytest.raises(SqsError) as err:
        await engine.receive_message("q", visibility_timeout=value)
    assert err.value.code == "InvalidParameterValue"


# -- ChangeMessageVisibility -------------------------------------------------------------------------


async def test_change_visibility_extends(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "30"})
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")

    clock.advance(20)
    await engine.change_message_visibility("q", msg["ReceiptHandle"], 60)  # counted from now
    clock.advance(59)
    assert await engine.receive_message("q") == []
    clock.advance(1.5)
    again = await receive_one(engine, "q")
    assert again["MessageId"] == msg["MessageId"]


async def test_change_visibility_shortens(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "300"})
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")
    await engine.change_message_visibility("q", msg["ReceiptHandle"], 10)
    clock.advance(9)
    assert await engine.receive_message("q") == []
    clock.advance(1.5)
    await receive_one(engine, "q")


async def test_change_visibility_to_zero_makes_it_visible_at_once(engine: Engine):
    await engine.create_queue("q", {"VisibilityTimeout": "300"})
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")
    assert await counts(engine, "q") == (0, 1, 0)

    await engine.change_message_visibility("q", msg["ReceiptHandle"], 0)
    assert await counts(engine, "q") == (1, 0, 0)
    again = await receive_one(engine, "q")
    assert again["MessageId"] == msg["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize("value", [-1, 43201])
async def test_change_visibility_out_of_range(engine: Engine, value: int):
    await engine.create_queue("q")
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")
    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility("q", msg["ReceiptHandle"], value)
    assert err.value.code == "InvalidParameterValue"
    # nothing changed: still in flight
    assert await engine.receive_message("q") == []


async def test_change_visibility_accepts_the_bounds(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")
    await engine.change_message_visibility("q", msg["ReceiptHandle"], 43200)
    clock.advance(43199)
    assert await engine.receive_message("q") == []
    await engine.change_message_visibility("q", msg["ReceiptHandle"], 0)
    await receive_one(engine, "q")


async def test_change_visibility_of_message_not_in_flight(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "10"})
    await engine.send_message("q", "m")
    msg = await receive_one(engine, "q")
    clock.advance(11)  # visibility expired: the message is back in the queue, not in flight
    # AWS: the latest handle of a message nobody received again still sets its timeout (issue 15).
    await engine.change_message_visibility("q", msg["ReceiptHandle"], 30)
    assert await engine.receive_message("q") == []
    clock.advance(31)
    again = await receive_one(engine, "q")
    clock.advance(11)
    with pytest.raises(SqsError) as err:  # received again since: the first handle is no longer the latest
        await engine.change_message_visibility("q", msg["ReceiptHandle"], 30)
    assert err.value.code == "MessageNotInflight"
    assert err.value.query_code == "AWS.SimpleQueueService.MessageNotInflight"
    await engine.change_message_visibility("q", again["ReceiptHandle"], 0)
    await receive_one(engine, "q")  # still deliverable


async def test_change_visibility_with_outdated_handle_standard(engine: Engine, clock: ManualClock):
    # AWS accepts an outdated handle on a standard queue while the message is in flight.
    await engine.create_queue("q", {"VisibilityTimeout": "10"})
    await engine.send_message("q", "m")
    old = await receive_one(engine, "q")
    clock.advance(11)
    await receive_one(engine, "q")
    await engine.change_message_visibility("q", old["ReceiptHandle"], 100)
    clock.advance(50)
    assert await engine.receive_message("q") == []  # extended to 100 s by the old handle
    clock.advance(51)
    await receive_one(engine, "q")


async def test_change_visibility_with_outdated_handle_fifo(engine: Engine, clock: ManualClock):
    # On a FIFO queue only the latest handle acts: an outdated one has expired and changes nothing.
    await engine.create_queue("q.fifo", {"FifoQueue": "true", "VisibilityTimeout": "10"})
    await engine.send_message("q.fifo", "m", group_id="g", deduplication_id="d")
    old = await receive_one(engine, "q.fifo")
    clock.advance(11)
    new = await receive_one(engine, "q.fifo")

    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility("q.fifo", old["ReceiptHandle"], 0)
    assert err.value.code == "InvalidParameterValue"
    assert "expired" in err.value.message
    assert await engine.receive_message("q.fifo") == []  # the outdated handle changed nothing

    await engine.change_message_visibility("q.fifo", new["ReceiptHandle"], 0)
    await receive_one(engine, "q.fifo")


async def test_change_visibility_with_malformed_handle(engine: Engine):
    await engine.create_queue("q")
    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility("q", "not-a-handle", 10)
    assert err.value.code == "ReceiptHandleIsInvalid"


async def test_change_visibility_batch_reports_each_entry(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "30"})
    for i in range(3):
        await engine.send_message("q", f"m{i}")
    msgs = await engine.receive_message("q", max_number=10)
    assert len(msgs) == 3
    by_body = {m["Body"]: m for m in msgs}

    result = await engine.change_message_visibility_batch(
        "q",
        [
            {"Id": "release", "ReceiptHandle": by_body["m0"]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "extend", "ReceiptHandle": by_body["m1"]["ReceiptHandle"], "VisibilityTimeout": 600},
            {"Id": "toolong", "ReceiptHandle": by_body["m2"]["ReceiptHandle"], "VisibilityTimeout": 43201},
            {"Id": "garbage", "ReceiptHandle": "garbage", "VisibilityTimeout": 10},
        ],
    )
    assert sorted(e["Id"] for e in result["Successful"]) == ["extend", "release"]
    failed = {e["Id"]: e for e in result["Failed"]}
    assert set(failed) == {"toolong", "garbage"}
    assert failed["toolong"]["Code"] == "InvalidParameterValue"
    assert failed["toolong"]["SenderFault"] is True
    assert failed["garbage"]["Code"] == "ReceiptHandleIsInvalid"

    # m0 released now; m1 extended to 600 s; m2 unchanged (30 s)
    now = await engine.receive_message("q", max_number=10)
    assert [m["Body"] for m in now] == ["m0"]
    clock.advance(31)
    later = await engine.receive_message("q", max_number=10)
    assert sorted(m["Body"] for m in later) == ["m0", "m2"]


async def test_change_visibility_batch_entry_errors(engine: Engine, clock: ManualClock):
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "10"}
    await engine.create_queue("q.fifo", fifo)
    await engine.send_message("q.fifo", "a", group_id="ga")
    await engine.send_message("q.fifo", "b", group_id="gb")
    first = {m["Body"]: m for m in await engine.receive_message("q.fifo", max_number=10)}
    clock.advance(11)
    second = {m["Body"]: m for m in await engine.receive_message("q.fifo", max_number=10)}
    assert set(second) == {"a", "b"}
    clock.advance(11)  # now nothing is in flight

    result = await engine.change_message_visibility_batch(
        "q.fifo",
        [
            {"Id": "outdated", "ReceiptHandle": first["a"]["ReceiptHandle"], "VisibilityTimeout": 5},
            {"Id": "notinflight", "ReceiptHandle": second["b"]["ReceiptHandle"], "VisibilityTimeout": 5},
        ],
    )
    # The latest handle of a message visible again sets its timeout (AWS); an outdated one has expired.
    assert result["Successful"] == [{"Id": "notinflight"}]
    codes = {e["Id"]: e["Code"] for e in result["Failed"]}
    assert codes == {"outdated": "InvalidParameterValue"}


async def test_change_visibility_batch_request_errors(engine: Engine):
    await engine.create_queue("q")
    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility_batch("q", [])
    assert err.value.code == "EmptyBatchRequest"
    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility_batch(
            "q", [{"Id": "x", "ReceiptHandle": "h", "VisibilityTimeout": 1}] * 2
        )
    assert err.value.code == "BatchEntryIdsNotDistinct"
    with pytest.raises(SqsError) as err:
        await engine.change_message_visibility_batch(
            "q", [{"Id": f"e{i}", "ReceiptHandle": "h", "VisibilityTimeout": 1} for i in range(11)]
        )
    assert err.value.code == "TooManyEntriesInBatchRequest"


# -- deleting with outdated handles ------------------------------------------------------------------


async def test_delete_with_outdated_handle_standard_deletes(engine: Engine, clock: ManualClock):
    # AWS: on a standard queue an outdated handle still deletes the message (moto's suite checks it).
    await engine.create_queue("q", {"VisibilityTimeout": "10"})
    await engine.send_message("q", "m")
    old = await receive_one(engine, "q")
    clock.advance(11)
    new = await receive_one(engine, "q")
    await engine.delete_message("q", old["ReceiptHandle"])
    assert await counts(engine, "q") == (0, 0, 0)
    await engine.delete_message("q", new["ReceiptHandle"])  # idempotent
    clock.advance(11)
    assert await engine.receive_message("q") == []


async def test_delete_with_outdated_handle_fifo_refused(engine: Engine, clock: ManualClock):
    # FIFO: only the latest handle deletes; the outdated one is refused and the message remains.
    await engine.create_queue("q.fifo", {"FifoQueue": "true", "VisibilityTimeout": "10"})
    await engine.send_message("q.fifo", "m", group_id="g", deduplication_id="d")
    old = await receive_one(engine, "q.fifo")
    clock.advance(11)
    new = await receive_one(engine, "q.fifo")

    with pytest.raises(SqsError) as err:
        await engine.delete_message("q.fifo", old["ReceiptHandle"])
    assert err.value.code == "InvalidParameterValue"
    assert await counts(engine, "q.fifo") == (0, 1, 0)  # the message remains
    clock.advance(11)
    third = await receive_one(engine, "q.fifo")
    assert third["MessageId"] == new["MessageId"]
    assert third["Attributes"]["ApproximateReceiveCount"] == "3"

    await engine.delete_message("q.fifo", third["ReceiptHandle"])
    assert await counts(engine, "q.fifo") == (0, 0, 0)
    await engine.delete_message("q.fifo", third["ReceiptHandle"])  # already gone: succeeds
    clock.advance(11)
    assert await engine.receive_message("q.fifo") == []


async def test_delete_batch_with_outdated_and_latest_handles(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {"FifoQueue": "true", "VisibilityTimeout": "10"})
    await engine.send_message("q.fifo", "m", group_id="g", deduplication_id="d")
    old = await receive_one(engine, "q.fifo")
    clock.advance(11)
    new = await receive_one(engine, "q.fifo")
    result = await engine.delete_message_batch("q.fifo", [{"Id": "old", "ReceiptHandle": old["ReceiptHandle"]}])
    assert result["Successful"] == []
    assert [(f["Id"], f["Code"]) for f in result["Failed"]] == [("old", "InvalidParameterValue")]
    assert await counts(engine, "q.fifo") == (0, 1, 0)
    result = await engine.delete_message_batch("q.fifo", [{"Id": "new", "ReceiptHandle": new["ReceiptHandle"]}])
    assert result == {"Successful": [{"Id": "new"}], "Failed": []}
    assert await counts(engine, "q.fifo") == (0, 0, 0)


# -- delays ------------------------------------------------------------------------------------------


async def test_queue_delay_seconds(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"DelaySeconds": "10"})
    await engine.send_message("q", "m")
    assert await counts(engine, "q") == (0, 0, 1)
    assert await engine.receive_message("q") == []
    clock.advance(9)
    assert await engine.receive_message("q") == []
    clock.advance(1.5)
    assert await counts(engine, "q") == (1, 0, 0)
    await receive_one(engine, "q")


async def test_message_delay_seconds_overrides_queue_delay(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"DelaySeconds": "60", "VisibilityTimeout": "300"})
    await engine.send_message("q", "later", delay_seconds=5)
    await engine.send_message("q", "now", delay_seconds=0)
    await engine.send_message("q", "queue-default")
    assert await counts(engine, "q") == (1, 0, 2)
    assert [m["Body"] for m in await engine.receive_message("q", max_number=10)] == ["now"]
    clock.advance(5)
    assert [m["Body"] for m in await engine.receive_message("q", max_number=10)] == ["later"]
    assert await counts(engine, "q") == (0, 2, 1)
    clock.advance(55)
    assert [m["Body"] for m in await engine.receive_message("q", max_number=10)] == ["queue-default"]


async def test_message_delay_in_batch(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    result = await engine.send_message_batch(
        "q",
        [
            {"Id": "a", "MessageBody": "a", "DelaySeconds": 30},
            {"Id": "b", "MessageBody": "b"},
        ],
    )
    assert len(result["Successful"]) == 2
    assert await counts(engine, "q") == (1, 0, 1)
    clock.advance(30)
    assert await counts(engine, "q") == (2, 0, 0)


@pytest.mark.parametrize("value", [-1, 901])
async def test_message_delay_out_of_range(engine: Engine, value: int):
    await engine.create_queue("q")
    with pytest.raises(SqsError) as err:
        await engine.send_message("q", "m", delay_seconds=value)
    assert err.value.code == "InvalidParameterValue"
    assert await counts(engine, "q") == (0, 0, 0)


# -- retention ---------------------------------------------------------------------------------------


async def test_retention_drops_expired_message(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"MessageRetentionPeriod": "60"})
    await engine.send_message("q", "m")
    clock.advance(59)
    assert await counts(engine, "q") == (1, 0, 0)
    clock.advance(2)
    assert await engine.receive_message("q", max_number=10) == []
    assert await counts(engine, "q") == (0, 0, 0)


async def test_retention_counts_before_any_receive(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"MessageRetentionPeriod": "60"})
    await engine.send_message("q", "m")
    clock.advance(61)
    assert await counts(engine, "q") == (0, 0, 0)


async def test_retention_drops_received_and_released_message(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"MessageRetentionPeriod": "60", "VisibilityTimeout": "30"})
    await engine.send_message("q", "released")
    await engine.send_message("q", "expired-visibility")
    clock.advance(5)
    msgs = {m["Body"]: m for m in await engine.receive_message("q", max_number=10)}
    assert set(msgs) == {"released", "expired-visibility"}
    clock.advance(5)
    await engine.change_message_visibility("q", msgs["released"]["ReceiptHandle"], 0)
    clock.advance(51)  # 61 s after the send
    assert await engine.receive_message("q", max_number=10) == []
    assert await counts(engine, "q") == (0, 0, 0)


async def test_retention_counts_from_send_not_from_receive(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"MessageRetentionPeriod": "60", "VisibilityTimeout": "50"})
    await engine.send_message("q", "m")
    clock.advance(30)
    await receive_one(engine, "q")  # visible again at 80 s, past retention
    clock.advance(51)
    assert await engine.receive_message("q") == []
    assert await counts(engine, "q") == (0, 0, 0)


# -- long polling ------------------------------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_a_message_is_sent(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20))
    await settle(poll)
    assert not poll.done()

    sent = await engine.send_message("q", "wake up")
    messages = await asyncio.wait_for(poll, 2)
    assert [m["MessageId"] for m in messages] == [sent["MessageId"]]


async def test_long_poll_wakes_on_batch_send(engine: Engine):
    await engine.create_queue("q")
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20, max_number=10))
    await settle(poll)
    await engine.send_message_batch("q", [{"Id": "a", "MessageBody": "a"}])
    assert [m["Body"] for m in await asyncio.wait_for(poll, 2)] == ["a"]


async def test_long_poll_times_out_empty(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20))
    await settle(poll)
    clock.advance(19)
    await settle(poll)
    assert not poll.done()
    clock.advance(1.5)
    assert await asyncio.wait_for(poll, 2) == []


async def test_long_poll_returns_when_delayed_message_becomes_visible(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    await engine.send_message("q", "delayed", delay_seconds=10)
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20))
    await settle(poll)
    assert not poll.done()
    clock.advance(10.5)
    messages = await asyncio.wait_for(poll, 2)
    assert [m["Body"] for m in messages] == ["delayed"]


async def test_long_poll_sees_message_delayed_after_it_started(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20))
    await settle(poll)
    await engine.send_message("q", "delayed", delay_seconds=5)
    await settle(poll)
    assert not poll.done()
    clock.advance(6)
    assert [m["Body"] for m in await asyncio.wait_for(poll, 2)] == ["delayed"]


async def test_long_poll_returns_when_visibility_expires(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "5"})
    await engine.send_message("q", "m")
    await receive_one(engine, "q")
    poll = asyncio.create_task(engine.receive_message("q", wait_time_seconds=20))
    await settle(poll)
    assert not poll.done()
    clock.advance(6)
    assert [m["Body"] for m in await asyncio.wait_for(poll, 2)] == ["m"]


async def test_queue_receive_wait_time_is_the_default(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"ReceiveMessageWaitTimeSeconds": "20"})
    poll = asyncio.create_task(engine.receive_message("q"))
    await settle(poll)
    assert not poll.done()  # long polls by default
    clock.advance(10)
    await settle(poll)
    assert not poll.done()
    await engine.send_message("q", "m")
    assert [m["Body"] for m in await asyncio.wait_for(poll, 2)] == ["m"]

    # An explicit WaitTimeSeconds=0 overrides the queue's default: a short poll.
    assert await asyncio.wait_for(engine.receive_message("q", wait_time_seconds=0), 2) == []

    timeout = asyncio.create_task(engine.receive_message("q"))
    await settle(timeout)
    clock.advance(21)
    assert await asyncio.wait_for(timeout, 2) == []


@pytest.mark.parametrize("value", [-1, 21])
async def test_wait_time_out_of_range(engine: Engine, value: int):
    await engine.create_queue("q")
    with pytest.raises(SqsError) as err:
        await engine.receive_message("q", wait_time_seconds=value)
    assert err.value.code == "InvalidParameterValue"


async def test_concurrent_long_polls_get_distinct_messages(engine: Engine):
    await engine.create_queue("q")
    polls = [asyncio.create_task(engine.receive_message("q", wait_time_seconds=20)) for _ in range(4)]
    for poll in polls:
        await settle(poll)
    assert not any(p.done() for p in polls)

    for i in range(4):
        await engine.send_message("q", f"m{i}")
    results = await asyncio.wait_for(asyncio.gather(*polls), 2)
    assert all(len(r) == 1 for r in results), results
    assert sorted(r[0]["Body"] for r in results) == ["m0", "m1", "m2", "m3"]


async def test_concurrent_long_polls_one_message_wakes_one(engine: Engine, clock: ManualClock):
    await engine.create_queue("q")
    polls = [asyncio.create_task(engine.receive_message("q", wait_time_seconds=20)) for _ in range(3)]
    for poll in polls:
        await settle(poll)
    await engine.send_message("q", "only")
    for poll in polls:
        await settle(poll)
    done = [p for p in polls if p.done()]
    assert len(done) == 1
    assert [m["Body"] for m in done[0].result()] == ["only"]
    clock.advance(21)
    rest = await asyncio.wait_for(asyncio.gather(*(p for p in polls if p not in done)), 2)
    assert rest == [[], []]


async def test_close_ends_pending_long_polls(tmp_path: Path, clock: ManualClock):
    engine = await Engine(EngineConfig(path=tmp_path / "close.db", clock=clock)).start()
    await engine.create_queue("a")
    await engine.create_queue("b")
    polls = [
        asyncio.create_task(engine.receive_message("a", wait_time_seconds=20)),
        asyncio.create_task(engine.receive_message("a", wait_time_seconds=20)),
        asyncio.create_task(engine.receive_message("b", wait_time_seconds=20)),
    ]
    for poll in polls:
        await settle(poll)
    await asyncio.wait_for(engine.close(), 2)
    assert await asyncio.wait_for(asyncio.gather(*polls), 2) == [[], [], []]


# -- durability --------------------------------------------------------------------------------------


async def test_state_survives_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "durable.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q", {"VisibilityTimeout": "30"})
        kept = await engine.send_message("q", "kept")
        await engine.send_message("q", "deleted")
        received = await engine.send_message("q", "received")
        await engine.send_message("q", "delayed", delay_seconds=100)

        first = {m["Body"]: m for m in await engine.receive_message("q", max_number=10, visibility_timeout=0)}
        # release everything, then take the messages we want
        assert set(first) == {"kept", "deleted", "received"}
        deleted = {m["Body"]: m for m in await engine.receive_message("q", max_number=10)}
        await engine.delete_message("q", deleted["deleted"]["ReceiptHandle"])
        await engine.change_message_visibility("q", deleted["kept"]["ReceiptHandle"], 0)
        # "received" stays in flight for 30 s

    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        assert engine.queue_exists("q")
        assert await counts(engine, "q") == (1, 1, 1)
        now = await engine.receive_message("q", max_number=10, attribute_names=["All"])
        assert [m["MessageId"] for m in now] == [kept["MessageId"]]
        await engine.delete_message("q", now[0]["ReceiptHandle"])

        clock.advance(31)
        later = await engine.receive_message("q", max_number=10, attribute_names=["All"])
        assert [m["MessageId"] for m in later] == [received["MessageId"]]
        assert later[0]["Attributes"]["ApproximateReceiveCount"] == "3"
        await engine.delete_message("q", later[0]["ReceiptHandle"])

        clock.advance(70)
        delayed = await engine.receive_message("q", max_number=10)
        assert [m["Body"] for m in delayed] == ["delayed"]


async def test_restart_keeps_receipt_handles_valid(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "handles.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q")
        await engine.send_message("q", "m")
        msg = await receive_one(engine, "q")
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.delete_message("q", msg["ReceiptHandle"])
        assert await counts(engine, "q") == (0, 0, 0)


async def test_message_ids_stay_unique_across_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "ids.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q")
        before = [(await engine.send_message("q", f"a{i}"))["MessageId"] for i in range(3)]
        msgs = await engine.receive_message("q", max_number=10)
        for m in msgs:
            await engine.delete_message("q", m["ReceiptHandle"])
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        after = [(await engine.send_message("q", f"b{i}"))["MessageId"] for i in range(3)]
        msgs = await engine.receive_message("q", max_number=10)
        assert sorted(m["Body"] for m in msgs) == ["b0", "b1", "b2"]
    assert not set(before) & set(after)


async def test_a_cancelled_receive_hands_back_what_it_reserved(tmp_path: Path, clock: ManualClock) -> None:
    # A caller cancelled while its receive waits for the store (a long-poll client disconnecting, a
    # consumer stopping) must not leave the messages hidden for the visibility timeout. A receive
    # waits for the store only while a full-durability commit runs on the commit thread.
    config = EngineConfig(path=tmp_path / "full.db", clock=clock, durability="full")
    async with Engine(config) as engine:
        await engine.create_queue("q", {"VisibilityTimeout": "300"})
        await engine.create_queue("other")
        await engine.send_message("q", "m")
        sending = asyncio.create_task(engine.send_message("other", "x"))
        await asyncio.sleep(0)  # the send's group is committing (an fsync on the commit thread)
        task = asyncio.create_task(engine.receive_message("q", max_number=10))
        await asyncio.sleep(0)  # the receive is queued behind that commit
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sending
        # the receive's group and the release run on the commit thread: poll until the message is back
        deadline = asyncio.get_running_loop().time() + 10
        while await counts(engine, "q") != (1, 0, 0):
            assert asyncio.get_running_loop().time() < deadline, await counts(engine, "q")
            await asyncio.sleep(0.01)
        (message,) = await engine.receive_message("q", attribute_names=["ApproximateReceiveCount"])
        assert message["Body"] == "m"  # visible again at once, not after 300 s
        assert message["Attributes"]["ApproximateReceiveCount"] == "2"  # it was taken once, then released


# -- the 12-hour cap: a reservation ends at most 43,200 s after its receive, extensions included --------


async def cap_refused(call: Any, timeout: int) -> None:
    with pytest.raises(SqsError) as info:
        await call
    assert info.value.code == "InvalidParameterValue"
    assert info.value.message == (
        f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the"
        " message is beyond the limit [43200 seconds]"
    )


async def test_change_visibility_cannot_pass_12_hours_from_the_receive(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "30"})
    await engine.send_message("q", "m")
    await receive_one(engine, "q")
    clock.advance(13 * 3600)  # that reservation ran out long ago
    handle = (await receive_one(engine, "q", visibility_timeout=7200))["ReceiptHandle"]  # the 12 hours start here
    clock.advance(2 * 3600 - 20)  # a heartbeat extends before the reservation runs out
    await engine.change_message_visibility("q", handle, 10 * 3600)  # 2 h + 10 h - 20 s: within the cap
    clock.advance(3600)
    await cap_refused(engine.change_message_visibility("q", handle, 9 * 3600 + 60), 9 * 3600 + 60)
    await engine.change_message_visibility("q", handle, 9 * 3600 - 60)  # within the cap
    clock.advance(9 * 3600 - 59)
    assert (await receive_one(engine, "q"))["Body"] == "m"  # the reservation ended where it was set to


async def test_change_visibility_batch_reports_the_cap_per_entry(engine: Engine, clock: ManualClock):
    await engine.create_queue("q", {"VisibilityTimeout": "3600"})
    await engine.send_message_batch("q", [{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}])
    messages = await engine.receive_message("q", max_number=2)
    assert len(messages) == 2
    clock.advance(1800)
    result = await engine.change_message_visibility_batch(
        "q",
        [
            {"Id": "ok", "ReceiptHandle": messages[0]["ReceiptHandle"], "VisibilityTimeout": 3600},
            {"Id": "long", "ReceiptHandle": messages[1]["ReceiptHandle"], "VisibilityTimeout": 43200},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"]) for f in result["Failed"]] == [("long", "InvalidParameterValue")]
    assert "beyond the limit [43200 seconds]" in result["Failed"][0]["Message"]


async def test_the_cap_holds_for_fifo_queues_and_across_a_restart(tmp_path: Path, clock: ManualClock):
    config = EngineConfig(path=tmp_path / "broker.db", clock=clock)
    async with Engine(config) as engine:
        await engine.create_queue("q.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
        await engine.send_message("q.fifo", "m", group_id="g")
        handle = (await receive_one(engine, "q.fifo", visibility_timeout=7200))["ReceiptHandle"]
    clock.advance(3600)
    async with Engine(config) as engine:  # the receive's time is in the stored receipt
        await cap_refused(engine.change_message_visibility("q.fifo", handle, 40000), 40000)
        await engine.change_message_visibility("q.fifo", handle, 39600)


async def test_a_reservation_from_before_the_cap_is_not_refused(engine: Engine, clock: ManualClock):
    """Receipts written before the receive's time was put in them hold a random nonce: whatever time it
    seems to say, the cap is not applied to that reservation rather than applied wrongly."""
    await engine.create_queue("q", {"VisibilityTimeout": "600"})
    await engine.send_message("q", "m")
    handle = (await receive_one(engine, "q"))["ReceiptHandle"]
    # A random 62-bit nonce whose top bits read as a second of 2021: far outside this reservation.
    old_style = (40_000_000 << 30) | 12345
    await engine._store.submit(lambda c: c.execute("UPDATE messages SET receipt=?", (old_style,)))
    await engine.change_message_visibility("q", handle, 43200)  # standard queue: any handle acts
