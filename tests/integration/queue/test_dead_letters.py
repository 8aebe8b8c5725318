"""Dead-letter queues: redrive policies, ListDeadLetterSourceQueues and message move tasks."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError

FIFO = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}


def redrive(engine: Engine, dlq: str, max_receive: int = 2) -> dict[str, str]:
    return {"RedrivePolicy": json.dumps({"deadLetterTargetArn": engine.queue_arn(dlq), "maxReceiveCount": max_receive})}


async def receive(engine: Engine, name: str, n: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    return await engine.receive_message(name, max_number=n, **kwargs)


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Body"] for m in messages]


async def visible_count(engine: Engine, name: str) -> int:
    attrs = await engine.get_queue_attributes(name, ["ApproximateNumberOfMessages"])
    return int(attrs["ApproximateNumberOfMessages"])


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    """Let background tasks run until `check` holds; fails after `timeout` real seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)
    for _ in range(5):  # let the task reach its next wait
        await asyncio.sleep(0)


async def latest_task(engine: Engine, dlq: str) -> dict[str, Any]:
    tasks = await engine.list_message_move_tasks(engine.queue_arn(dlq))
    assert len(tasks) == 1
    return tasks[0]


async def moved(engine: Engine, dlq: str) -> int:
    return int((await latest_task(engine, dlq))["ApproximateNumberOfMessagesMoved"])


async def dead_letter(
    engine: Engine, clock: ManualClock, source: str, count: int, vt: int = 10, max_receive: int = 2
) -> list[dict[str, Any]]:
    """Receive every message of `source` `max_receive` times without deleting, then once more.

    Returns what the last receive gave (nothing when everything was dead-lettered)."""
    for _ in range(max_receive):
        got = await receive(engine, source, visibility_timeout=vt)
        assert len(got) == count
        clock.advance(vt + 1)
    return await receive(engine, source)


async def setup_pair(engine: Engine, *, fifo: bool = False, max_receive: int = 2) -> tuple[str, str]:
    dlq, src = ("dlq.fifo", "src.fifo") if fifo else ("dlq", "src")
    await engine.create_queue(dlq, FIFO if fifo else {})
    await engine.create_queue(src, {**(FIFO if fifo else {}), **redrive(engine, dlq, max_receive)})
    return src, dlq


# -- redrive policy ----------------------------------------------------------------------------------


async def test_message_moves_to_dlq_after_max_receive_count(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine)
    sent = await engine.send_message(
        src, "poison", message_attributes={"k": {"DataType": "String", "StringValue": "v"}}
    )

    first = await receive(engine, src, attribute_names=["ApproximateReceiveCount"])
    assert first[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    clock.advance(31)
    second = await receive(engine, src, attribute_names=["ApproximateReceiveCount"])
    assert second[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    clock.advance(31)

    assert await receive(engine, src) == []  # the third receive dead-letters it
    assert await visible_count(engine, src) == 0
    assert await visible_count(engine, dlq) == 1

    plain = await receive(engine, dlq, visibility_timeout=0)
    assert [m["MessageId"] for m in plain] == [sent["MessageId"]]
    assert plain[0]["Body"] == "poison"
    assert "Attributes" not in plain[0]  # system attributes only when asked for
    (m,) = await receive(engine, dlq, attribute_names=["DeadLetterQueueSourceArn"], message_attribute_names=["All"])
    assert m["MessageId"] == sent["MessageId"]
    assert m["Attributes"] == {"DeadLetterQueueSourceArn": engine.queue_arn(src)}
    assert m["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]

    # the old receipt handle no longer works on the source
    await engine.delete_message(dlq, m["ReceiptHandle"])
    assert await visible_count(engine, dlq) == 0


async def test_deleted_message_is_not_dead_lettered(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    await engine.send_message(src, "ok")
    await engine.send_message(src, "bad")
    msgs = {m["Body"]: m for m in await receive(engine, src)}
    await engine.delete_message(src, msgs["ok"]["ReceiptHandle"])
    clock.advance(31)
    assert await receive(engine, src) == []
    assert bodies(await receive(engine, dlq)) == ["bad"]


async def test_dead_lettering_delivers_the_healthy_messages(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    await engine.send_message(src, "old")
    await receive(engine, src)
    clock.advance(31)
    await engine.send_message(src, "new")
    assert bodies(await receive(engine, src)) == ["new"]
    assert bodies(await receive(engine, dlq)) == ["old"]


async def test_long_poll_on_dlq_wakes_when_a_message_is_dead_lettered(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    await engine.send_message(src, "m")
    await receive(engine, src)
    clock.advance(31)
    poll = asyncio.create_task(engine.receive_message(dlq, wait_time_seconds=20))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not poll.done()
    assert await receive(engine, src) == []
    assert bodies(await asyncio.wait_for(poll, 2)) == ["m"]


async def test_fifo_dead_letter_keeps_group_order(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, fifo=True)
    sent = [await engine.send_message(src, f"m{i}", group_id="g") for i in range(3)]
    await engine.send_message(src, "h0", group_id="h")
    for _ in range(2):
        got = await receive(engine, src, visibility_timeout=10)
        assert [b for b in bodies(got) if b.startswith("m")] == ["m0", "m1", "m2"]
        assert "h0" in bodies(got)
        clock.advance(11)
    await engine.send_message(src, "h1", group_id="h")
    # g's messages and h0 go to the DLQ; h1 is delivered
    assert bodies(await receive(engine, src)) == ["h1"]

    dead = await receive(engine, dlq, attribute_names=["All"])
    assert [b for b in bodies(dead) if b.startswith("m")] == ["m0", "m1", "m2"]
    assert sorted(bodies(dead)) == ["h0", "m0", "m1", "m2"]
    dead = [m for m in dead if m["Body"].startswith("m")]
    assert [m["MessageId"] for m in dead] == [s["MessageId"] for s in sent]
    for m in dead:
        assert m["Attributes"]["DeadLetterQueueSourceArn"] == engine.queue_arn(src)
        assert m["Attributes"]["MessageGroupId"] == "g"
        # AWS: in a FIFO DLQ the deduplication id is replaced by the message's id
        assert m["Attributes"]["MessageDeduplicationId"] == m["MessageId"]
    assert await receive(engine, dlq) == []  # the groups are held in the DLQ too


async def test_fifo_dead_letter_one_at_a_time_keeps_order(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, fifo=True, max_receive=1)
    for i in range(3):
        await engine.send_message(src, f"m{i}", group_id="g")
    assert bodies(await receive(engine, src, 1, visibility_timeout=5)) == ["m0"]
    clock.advance(6)
    # m0 goes to the DLQ and the group's next message is delivered
    assert bodies(await receive(engine, src, 1, visibility_timeout=5)) == ["m1"]
    clock.advance(6)
    assert bodies(await receive(engine, src, 1, visibility_timeout=5)) == ["m2"]
    clock.advance(6)
    assert await receive(engine, src) == []
    assert bodies(await receive(engine, dlq)) == ["m0", "m1", "m2"]


async def test_redrive_policy_rejects_mixed_queue_types(engine: Engine):
    await engine.create_queue("dlq")
    await engine.create_queue("dlq.fifo", FIFO)
    with pytest.raises(SqsError) as err:
        await engine.create_queue("src.fifo", {**FIFO, **redrive(engine, "dlq")})
    assert err.value.code == "InvalidParameterValue"
    with pytest.raises(SqsError) as err:
        await engine.create_queue("src", redrive(engine, "dlq.fifo"))
    assert err.value.code == "InvalidParameterValue"


# -- ListDeadLetterSourceQueues ----------------------------------------------------------------------


async def test_list_dead_letter_source_queues_with_pagination(engine: Engine):
    await engine.create_queue("dlq")
    await engine.create_queue("dlq2")
    for i in range(5):
        await engine.create_queue(f"src{i}", redrive(engine, "dlq"))
    await engine.create_queue("unrelated")
    await engine.create_queue("other-src", redrive(engine, "dlq2"))

    names, token = await engine.list_dead_letter_source_queues("dlq")
    assert names == [f"src{i}" for i in range(5)]
    assert token is None

    pages: list[list[str]] = []
    token = None
    while True:
        page, token = await engine.list_dead_letter_source_queues("dlq", max_results=2, next_token=token)
        pages.append(page)
        if token is None:
            break
    assert pages == [["src0", "src1"], ["src2", "src3"], ["src4"]]

    assert await engine.list_dead_letter_source_queues("dlq2") == (["other-src"], None)
    assert await engine.list_dead_letter_source_queues("unrelated") == ([], None)

    # removing a redrive policy removes the source
    await engine.set_queue_attributes("src0", {"RedrivePolicy": ""})
    assert (await engine.list_dead_letter_source_queues("dlq"))[0] == [f"src{i}" for i in range(1, 5)]


async def test_list_dead_letter_source_queues_errors(engine: Engine):
    await engine.create_queue("dlq")
    with pytest.raises(SqsError) as err:
        await engine.list_dead_letter_source_queues("missing")
    assert err.value.code == "QueueDoesNotExist"
    for bad in (0, 1001):
        with pytest.raises(SqsError) as err:
            await engine.list_dead_letter_source_queues("dlq", max_results=bad)
        assert err.value.code == "InvalidParameterValue"
    with pytest.raises(SqsError) as err:
        await engine.list_dead_letter_source_queues("dlq", max_results=1, next_token="garbage!")
    assert err.value.code == "InvalidParameterValue"


# -- message move tasks ------------------------------------------------------------------------------


async def test_start_move_task_errors(engine: Engine):
    src, dlq = await setup_pair(engine)
    await engine.create_queue("plain")
    with pytest.raises(SqsError) as err:
        await engine.start_message_move_task(engine.queue_arn("plain"))
    assert err.value.code == "InvalidParameterValue"
    with pytest.raises(SqsError) as err:
        await engine.start_message_move_task(engine.queue_arn(src))  # a source, not a DLQ
    assert err.value.code == "InvalidParameterValue"
    with pytest.raises(SqsError) as err:
        await engine.start_message_move_task(engine.queue_arn("nope"))
    assert err.value.code == "ResourceNotFoundException"
    with pytest.raises(SqsError) as err:
        await engine.start_message_move_task(engine.queue_arn(dlq), destination_arn=engine.queue_arn("nope"))
    assert err.value.code == "ResourceNotFoundException"
    for rate in (0, 501):
        with pytest.raises(SqsError) as err:
            await engine.start_message_move_task(engine.queue_arn(dlq), max_per_second=rate)
        assert err.value.code == "InvalidParameterValue"
    with pytest.raises(SqsError) as err:
        await engine.list_message_move_tasks(engine.queue_arn("nope"))
    assert err.value.code == "ResourceNotFoundException"
    assert await engine.list_message_move_tasks(engine.queue_arn(dlq)) == []


async def test_move_task_returns_messages_to_their_sources(engine: Engine, clock: ManualClock):
    await engine.create_queue("dlq")
    await engine.create_queue("a", redrive(engine, "dlq", 1))
    await engine.create_queue("b", redrive(engine, "dlq", 1))
    originals = {}
    for q in ("a", "b"):
        for i in range(2):
            sent = await engine.send_message(q, f"{q}{i}")
            originals[f"{q}{i}"] = sent["MessageId"]
    for q in ("a", "b"):
        assert await dead_letter(engine, clock, q, 2, max_receive=1) == []
    assert await visible_count(engine, "dlq") == 4

    handle = await engine.start_message_move_task(engine.queue_arn("dlq"))
    assert isinstance(handle, str) and handle
    await until(lambda: _status_is(engine, "dlq", "COMPLETED"))

    task = await latest_task(engine, "dlq")
    assert task["Status"] == "COMPLETED"
    assert task["SourceArn"] == engine.queue_arn("dlq")
    assert task["ApproximateNumberOfMessagesMoved"] == 4
    assert task["ApproximateNumberOfMessagesToMove"] == 4
    assert "TaskHandle" not in task  # only running tasks show their handle
    assert "DestinationArn" not in task
    assert isinstance(task["StartedTimestamp"], int)

    assert await visible_count(engine, "dlq") == 0
    got_a = await receive(engine, "a", attribute_names=["All"])
    got_b = await receive(engine, "b", attribute_names=["All"])
    assert sorted(bodies(got_a)) == ["a0", "a1"]
    assert sorted(bodies(got_b)) == ["b0", "b1"]
    for m in got_a + got_b:
        # a redriven message is a new message: it starts counting receives again
        assert m["Attributes"]["ApproximateReceiveCount"] == "1"
        assert "DeadLetterQueueSourceArn" not in m["Attributes"]


async def test_move_task_to_destination(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    await engine.create_queue("elsewhere")
    await engine.send_message(src, "x")
    await engine.send_message(src, "y")
    assert await dead_letter(engine, clock, src, 2, max_receive=1) == []

    await engine.start_message_move_task(engine.queue_arn(dlq), destination_arn=engine.queue_arn("elsewhere"))
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    task = await latest_task(engine, dlq)
    assert task["DestinationArn"] == engine.queue_arn("elsewhere")
    assert task["ApproximateNumberOfMessagesMoved"] == 2
    assert sorted(bodies(await receive(engine, "elsewhere"))) == ["x", "y"]
    assert await receive(engine, src) == []


async def test_redriven_message_is_a_new_message(engine: Engine, clock: ManualClock):
    """AWS: redrive resets the retention period; redriven messages get a new MessageId."""
    await engine.create_queue("dlq", {"MessageRetentionPeriod": "1209600"})
    await engine.create_queue("src", {"MessageRetentionPeriod": "120", **redrive(engine, "dlq", 1)})
    sent = await engine.send_message("src", "m")
    assert await dead_letter(engine, clock, "src", 1, max_receive=1) == []
    clock.advance(200)  # older than the source's retention, fine in the DLQ
    assert await visible_count(engine, "dlq") == 1

    await engine.start_message_move_task(engine.queue_arn("dlq"))
    await until(lambda: _status_is(engine, "dlq", "COMPLETED"))
    (m,) = await receive(engine, "src", attribute_names=["SentTimestamp"])
    assert m["Body"] == "m"
    assert m["MessageId"] != sent["MessageId"]
    assert int(m["Attributes"]["SentTimestamp"]) == int(clock.now() * 1000)


async def test_move_task_rate_limit_and_progress(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    for i in range(3):
        await engine.send_message(src, f"m{i}")
    assert await dead_letter(engine, clock, src, 3, max_receive=1) == []

    handle = await engine.start_message_move_task(engine.queue_arn(dlq), max_per_second=1)
    await until(lambda: _moved_is(engine, dlq, 1))
    task = await latest_task(engine, dlq)
    assert task["Status"] == "RUNNING"
    assert task["TaskHandle"] == handle
    assert task["MaxNumberOfMessagesPerSecond"] == 1
    assert task["ApproximateNumberOfMessagesToMove"] == 3
    assert await visible_count(engine, src) == 1
    assert await visible_count(engine, dlq) == 2

    # no clock time passes: no more moves
    for _ in range(20):
        await asyncio.sleep(0)
    assert await moved(engine, dlq) == 1

    with pytest.raises(SqsError) as err:  # one active task per source
        await engine.start_message_move_task(engine.queue_arn(dlq))
    assert err.value.code == "InvalidParameterValue"

    clock.advance(1)
    await until(lambda: _moved_is(engine, dlq, 2))
    assert await visible_count(engine, src) == 2
    clock.advance(1)
    await until(lambda: _moved_is(engine, dlq, 3))
    clock.advance(1)
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    assert await visible_count(engine, src) == 3
    assert await visible_count(engine, dlq) == 0

    # the task is over: a new one may start, and the list shows both, newest first
    clock.advance(1)
    second = await engine.start_message_move_task(engine.queue_arn(dlq))
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    tasks = await engine.list_message_move_tasks(engine.queue_arn(dlq), max_results=10)
    assert [t["ApproximateNumberOfMessagesMoved"] for t in tasks] == [0, 3]
    assert second != handle
    with pytest.raises(SqsError) as err:
        await engine.list_message_move_tasks(engine.queue_arn(dlq), max_results=11)
    assert err.value.code == "InvalidParameterValue"


async def test_cancel_move_task(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, max_receive=1)
    for i in range(3):
        await engine.send_message(src, f"m{i}")
    assert await dead_letter(engine, clock, src, 3, max_receive=1) == []

    handle = await engine.start_message_move_task(engine.queue_arn(dlq), max_per_second=1)
    await until(lambda: _moved_is(engine, dlq, 1))
    assert await engine.cancel_message_move_task(handle) == 1

    task = await latest_task(engine, dlq)
    assert task["Status"] == "CANCELLED"
    assert "TaskHandle" not in task
    for _ in range(3):
        clock.advance(1)
        for _ in range(20):
            await asyncio.sleep(0)
    assert await moved(engine, dlq) == 1
    assert await visible_count(engine, src) == 1
    assert await visible_count(engine, dlq) == 2

    with pytest.raises(SqsError) as err:  # not running any more
        await engine.cancel_message_move_task(handle)
    assert err.value.code == "InvalidParameterValue"

    # a cancelled task does not block a new one
    await engine.start_message_move_task(engine.queue_arn(dlq))
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    assert await visible_count(engine, src) == 3


async def test_cancel_unknown_move_task(engine: Engine):
    with pytest.raises(SqsError) as err:
        await engine.cancel_message_move_task("no-such-task")
    assert err.value.code == "InvalidParameterValue"  # not a handle at all (AWS's answer)
    unknown = base64.urlsafe_b64encode(json.dumps({"taskId": "t", "sourceArn": "arn:aws:sqs:x"}).encode()).decode()
    with pytest.raises(SqsError) as err:
        await engine.cancel_message_move_task(unknown)
    assert err.value.code == "ResourceNotFoundException"
    with pytest.raises(SqsError) as err:
        await engine.cancel_message_move_task("")
    assert err.value.code == "MissingParameter"


async def test_move_task_fifo_keeps_group_order(engine: Engine, clock: ManualClock):
    src, dlq = await setup_pair(engine, fifo=True, max_receive=1)
    for i in range(3):
        await engine.send_message(src, f"m{i}", group_id="g")
    assert await dead_letter(engine, clock, src, 3, max_receive=1) == []

    await engine.start_message_move_task(engine.queue_arn(dlq))
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    assert bodies(await receive(engine, src)) == ["m0", "m1", "m2"]


async def test_move_task_fifo_redriven_messages_come_after_newer_ones(engine: Engine, clock: ManualClock):
    """AWS: the destination ingests redriven messages in the order it receives them."""
    src, dlq = await setup_pair(engine, fifo=True, max_receive=1)
    for i in range(2):
        await engine.send_message(src, f"old{i}", group_id="g")
    assert await dead_letter(engine, clock, src, 2, max_receive=1) == []
    await engine.send_message(src, "new", group_id="g")

    await engine.start_message_move_task(engine.queue_arn(dlq))
    await until(lambda: _status_is(engine, dlq, "COMPLETED"))
    got = await receive(engine, src, attribute_names=["SequenceNumber"])
    assert bodies(got) == ["new", "old0", "old1"]
    numbers = [int(m["Attributes"]["SequenceNumber"]) for m in got]
    assert numbers == sorted(numbers)


async def test_move_task_resumes_after_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "moves.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        src, dlq = await setup_pair(engine, max_receive=1)
        for i in range(3):
            await engine.send_message(src, f"m{i}")
        assert await dead_letter(engine, clock, src, 3, max_receive=1) == []
        handle = await engine.start_message_move_task(engine.queue_arn(dlq), max_per_second=1)
        await until(lambda: _moved_is(engine, dlq, 1))

    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await until(lambda: _moved_is(engine, dlq, 2))  # resumed at once
        task = await latest_task(engine, dlq)
        assert task["Status"] == "RUNNING"
        assert task["TaskHandle"] == handle
        clock.advance(1)
        await until(lambda: _moved_is(engine, dlq, 3))
        clock.advance(1)
        await until(lambda: _status_is(engine, dlq, "COMPLETED"))
        assert sorted(bodies(await receive(engine, src))) == ["m0", "m1", "m2"]
        assert await visible_count(engine, dlq) == 0


async def test_cancelled_task_does_not_resume_after_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "cancel.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        src, dlq = await setup_pair(engine, max_receive=1)
        for i in range(2):
            await engine.send_message(src, f"m{i}")
        assert await dead_letter(engine, clock, src, 2, max_receive=1) == []
        handle = await engine.start_message_move_task(engine.queue_arn(dlq), max_per_second=1)
        await until(lambda: _moved_is(engine, dlq, 1))
        await engine.cancel_message_move_task(handle)

    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        for _ in range(3):
            clock.advance(1)
            for _ in range(20):
                await asyncio.sleep(0)
        assert (await latest_task(engine, dlq))["Status"] == "CANCELLED"
        assert await visible_count(engine, dlq) == 1


async def _status_is(engine: Engine, dlq: str, status: str) -> bool:
    return (await latest_task(engine, dlq))["Status"] == status


async def _moved_is(engine: Engine, dlq: str, count: int) -> bool:
    return await moved(engine, dlq) == count
