"""FIFO queues: per-group order, group holds, deduplication, sequence numbers and receive attempts."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError

FIFO = {"FifoQueue": "true"}
CONTENT = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}


async def receive(engine: Engine, name: str, n: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    return await engine.receive_message(name, max_number=n, attribute_names=["All"], **kwargs)


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Body"] for m in messages]


async def delete_all(engine: Engine, name: str, messages: list[dict[str, Any]]) -> None:
    for m in messages:
        await engine.delete_message(name, m["ReceiptHandle"])


async def send(engine: Engine, name: str, body: str, group: str, **kwargs: Any) -> dict[str, Any]:
    return await engine.send_message(name, body, group_id=group, **kwargs)


# -- ordering ----------------------------------------------------------------------------------------


async def test_strict_order_per_group_across_many_receives(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", CONTENT)
    groups = ("a", "b", "c")
    for i in range(30):
        group = groups[i % 3]
        await send(engine, "q.fifo", f"{group}-{i:02d}", group)
        clock.advance(0.01)

    got: dict[str, list[str]] = {g: [] for g in groups}
    for size in (1, 2, 3, 1, 4, 10, 2, 1, 10, 10, 10, 10, 10):
        msgs = await receive(engine, "q.fifo", size)
        assert len(msgs) <= size
        for m in msgs:
            got[m["Attributes"]["MessageGroupId"]].append(m["Body"])
        await delete_all(engine, "q.fifo", msgs)
    for g in groups:
        assert got[g] == [f"{g}-{i:02d}" for i in range(30) if groups[i % 3] == g]
    assert await receive(engine, "q.fifo") == []


async def test_several_messages_of_one_group_in_one_receive_in_order(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    for i in range(5):
        await send(engine, "q.fifo", f"m{i}", "g")
    first = await receive(engine, "q.fifo", 3)
    assert bodies(first) == ["m0", "m1", "m2"]
    assert await receive(engine, "q.fifo") == []  # the group is held while m0..m2 are in flight
    await delete_all(engine, "q.fifo", first)
    assert bodies(await receive(engine, "q.fifo")) == ["m3", "m4"]


async def test_many_groups_fill_a_receive(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", CONTENT)
    for i in range(25):
        await send(engine, "q.fifo", f"g{i:02d}-1", f"g{i:02d}")
        await send(engine, "q.fifo", f"g{i:02d}-2", f"g{i:02d}")
        clock.advance(0.01)
    seen: list[str] = []
    while msgs := await receive(engine, "q.fifo"):
        assert len(msgs) == 10 or len(seen) + len(msgs) == 50
        seen += bodies(msgs)
        await delete_all(engine, "q.fifo", msgs)
    assert sorted(seen) == sorted(f"g{i:02d}-{k}" for i in range(25) for k in (1, 2))
    for i in range(25):
        assert seen.index(f"g{i:02d}-1") < seen.index(f"g{i:02d}-2")


async def test_group_held_while_in_flight_other_groups_flow(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", CONTENT)
    await send(engine, "q.fifo", "a1", "A")
    clock.advance(0.01)
    await send(engine, "q.fifo", "a2", "A")
    clock.advance(0.01)
    await send(engine, "q.fifo", "b1", "B")
    clock.advance(0.01)
    await send(engine, "q.fifo", "b2", "B")

    (a1,) = await receive(engine, "q.fifo", 1)
    assert a1["Body"] == "a1"
    (b1,) = await receive(engine, "q.fifo", 1)
    assert b1["Body"] == "b1"  # A is held, B flows
    assert await receive(engine, "q.fifo") == []  # both groups held

    await engine.delete_message("q.fifo", a1["ReceiptHandle"])
    assert bodies(await receive(engine, "q.fifo")) == ["a2"]
    assert await receive(engine, "q.fifo") == []


async def test_group_held_until_every_in_flight_message_is_deleted(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    for body in ("m1", "m2", "m3"):
        await send(engine, "q.fifo", body, "g")
    m1, m2 = await receive(engine, "q.fifo", 2)
    await engine.delete_message("q.fifo", m1["ReceiptHandle"])
    assert await receive(engine, "q.fifo") == []  # m2 still in flight
    await engine.delete_message("q.fifo", m2["ReceiptHandle"])
    assert bodies(await receive(engine, "q.fifo")) == ["m3"]


async def test_group_released_on_visibility_expiry_and_order_kept(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "10"})
    for body in ("m1", "m2", "m3"):
        await send(engine, "q.fifo", body, "g")
    first = await receive(engine, "q.fifo", 1)
    assert bodies(first) == ["m1"]
    clock.advance(9)
    assert await receive(engine, "q.fifo") == []
    clock.advance(1.5)
    again = await receive(engine, "q.fifo")
    assert bodies(again) == ["m1", "m2", "m3"]  # the redelivered message comes first
    assert again[0]["MessageId"] == first[0]["MessageId"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again[1]["Attributes"]["ApproximateReceiveCount"] == "1"


async def test_change_visibility_zero_releases_group_in_order(engine: Engine):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "300"})
    await send(engine, "q.fifo", "m1", "g")
    await send(engine, "q.fifo", "m2", "g")
    (m1,) = await receive(engine, "q.fifo", 1)
    assert await receive(engine, "q.fifo") == []
    await engine.change_message_visibility("q.fifo", m1["ReceiptHandle"], 0)
    assert bodies(await receive(engine, "q.fifo")) == ["m1", "m2"]


async def test_change_visibility_extends_group_hold(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "10"})
    await send(engine, "q.fifo", "m1", "g")
    await send(engine, "q.fifo", "m2", "g")
    (m1,) = await receive(engine, "q.fifo", 1)
    await engine.change_message_visibility("q.fifo", m1["ReceiptHandle"], 100)
    clock.advance(50)
    assert await receive(engine, "q.fifo") == []
    clock.advance(51)
    assert bodies(await receive(engine, "q.fifo")) == ["m1", "m2"]


async def test_queue_delay_applies_to_fifo(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {**CONTENT, "DelaySeconds": "5"})
    await send(engine, "q.fifo", "m", "g")
    assert await receive(engine, "q.fifo") == []
    clock.advance(5)
    assert bodies(await receive(engine, "q.fifo")) == ["m"]


# -- sequence numbers --------------------------------------------------------------------------------


async def test_sequence_numbers_strictly_increase_and_match_on_receive(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    sent = [await send(engine, "q.fifo", f"m{i}", "abc"[i % 3]) for i in range(9)]
    batch = await engine.send_message_batch(
        "q.fifo",
        [{"Id": f"e{i}", "MessageBody": f"b{i}", "MessageGroupId": "abc"[i % 3]} for i in range(3)],
    )
    assert [e["Id"] for e in batch["Successful"]] == ["e0", "e1", "e2"]
    numbers = [s["SequenceNumber"] for s in sent] + [e["SequenceNumber"] for e in batch["Successful"]]
    assert all(isinstance(n, str) and n.isdigit() for n in numbers)
    as_ints = [int(n) for n in numbers]
    assert as_ints == sorted(as_ints) and len(set(as_ints)) == len(as_ints)

    by_id = {s["MessageId"]: s["SequenceNumber"] for s in sent}
    by_id.update({e["MessageId"]: e["SequenceNumber"] for e in batch["Successful"]})
    received = await receive(engine, "q.fifo")
    assert len(received) == 10
    received += await receive(engine, "q.fifo")  # nothing: every group is in flight
    assert len(received) == 10
    for m in received:
        assert m["Attributes"]["SequenceNumber"] == by_id[m["MessageId"]]


async def test_sequence_numbers_keep_increasing_after_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "seq.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q.fifo", CONTENT)
        first = await send(engine, "q.fifo", "one", "g")
        (m,) = await receive(engine, "q.fifo")
        await engine.delete_message("q.fifo", m["ReceiptHandle"])
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        second = await send(engine, "q.fifo", "two", "g")
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])


async def test_standard_queue_send_has_no_sequence_number(engine: Engine):
    await engine.create_queue("std")
    sent = await engine.send_message("std", "m", group_id="g")
    assert "SequenceNumber" not in sent
    (m,) = await receive(engine, "std")
    assert "SequenceNumber" not in m["Attributes"]


async def test_message_group_id_accepted_on_standard_queue(engine: Engine):
    await engine.create_queue("std")
    await engine.send_message("std", "grouped", group_id="tenant-1")
    await engine.send_message("std", "plain")
    msgs = {m["Body"]: m for m in await receive(engine, "std")}
    assert msgs["grouped"]["Attributes"]["MessageGroupId"] == "tenant-1"
    assert "MessageGroupId" not in msgs["plain"]["Attributes"]
    only = await engine.receive_message("std", attribute_names=["MessageGroupId"])
    assert only == []  # both in flight
    # On a standard queue a group does not hold back its other messages.
    await engine.send_message("std", "g2", group_id="tenant-1")
    (m,) = await engine.receive_message("std", message_system_attribute_names=["MessageGroupId"])
    assert m["Attributes"] == {"MessageGroupId": "tenant-1"}


# -- deduplication -----------------------------------------------------------------------------------


async def test_dedup_by_id_returns_original(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", FIFO)
    first = await send(engine, "q.fifo", "body", "g", deduplication_id="d1")
    clock.advance(100)
    again = await send(engine, "q.fifo", "other body", "g2", deduplication_id="d1")
    assert again["MessageId"] == first["MessageId"]
    assert again["SequenceNumber"] == first["SequenceNumber"]
    msgs = await receive(engine, "q.fifo")
    assert bodies(msgs) == ["body"]
    assert msgs[0]["Attributes"]["MessageDeduplicationId"] == "d1"
    counts = await engine.get_queue_attributes(
        "q.fifo", ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}


async def test_dedup_by_content_uses_sha256(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    first = await send(engine, "q.fifo", "same body", "g")
    second = await send(engine, "q.fifo", "same body", "g")
    third = await send(engine, "q.fifo", "different body", "g")
    assert second["MessageId"] == first["MessageId"]
    assert second["SequenceNumber"] == first["SequenceNumber"]
    assert third["MessageId"] != first["MessageId"]
    msgs = await receive(engine, "q.fifo")
    assert bodies(msgs) == ["same body", "different body"]
    expected = hashlib.sha256(b"same body").hexdigest()
    assert msgs[0]["Attributes"]["MessageDeduplicationId"] == expected


async def test_explicit_dedup_id_wins_over_content(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    await send(engine, "q.fifo", "same", "g", deduplication_id="x1")
    await send(engine, "q.fifo", "same", "g", deduplication_id="x2")
    assert bodies(await receive(engine, "q.fifo")) == ["same", "same"]


async def test_dedup_in_batch(engine: Engine):
    await engine.create_queue("q.fifo", FIFO)
    result = await engine.send_message_batch(
        "q.fifo",
        [
            {"Id": "a", "MessageBody": "1", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
            {"Id": "b", "MessageBody": "2", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
        ],
    )
    ok = {e["Id"]: e for e in result["Successful"]}
    assert set(ok) == {"a", "b"}
    assert ok["a"]["MessageId"] == ok["b"]["MessageId"]
    assert bodies(await receive(engine, "q.fifo")) == ["1"]


async def test_dedup_holds_after_original_is_deleted(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", FIFO)
    first = await send(engine, "q.fifo", "m", "g", deduplication_id="d")
    (m,) = await receive(engine, "q.fifo")
    await engine.delete_message("q.fifo", m["ReceiptHandle"])
    clock.advance(200)
    again = await send(engine, "q.fifo", "m", "g", deduplication_id="d")
    assert again["MessageId"] == first["MessageId"]
    assert await receive(engine, "q.fifo") == []


async def test_dedup_holds_across_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "dedup.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q.fifo", CONTENT)
        first = await send(engine, "q.fifo", "m", "g")
        by_id = await send(engine, "q.fifo", "n", "g", deduplication_id="explicit")
    clock.advance(60)
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        assert (await send(engine, "q.fifo", "m", "g"))["MessageId"] == first["MessageId"]
        again = await send(engine, "q.fifo", "other", "g", deduplication_id="explicit")
        assert again["MessageId"] == by_id["MessageId"]
        assert again["SequenceNumber"] == by_id["SequenceNumber"]
        assert bodies(await receive(engine, "q.fifo")) == ["m", "n"]


async def test_dedup_expires_after_five_minutes(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", CONTENT)
    first = await send(engine, "q.fifo", "m", "g")
    clock.advance(299)
    # a duplicate inside the window does not extend it
    assert (await send(engine, "q.fifo", "m", "g"))["MessageId"] == first["MessageId"]
    clock.advance(2)  # 301 s after the first send
    fresh = await send(engine, "q.fifo", "m", "g")
    assert fresh["MessageId"] != first["MessageId"]
    assert int(fresh["SequenceNumber"]) > int(first["SequenceNumber"])
    msgs = await receive(engine, "q.fifo")
    assert [m["MessageId"] for m in msgs] == [first["MessageId"], fresh["MessageId"]]
    # and the new message opens its own window
    assert (await send(engine, "q.fifo", "m", "g"))["MessageId"] == fresh["MessageId"]


async def test_dedup_scope_queue_spans_groups(engine: Engine):
    await engine.create_queue("q.fifo", FIFO)
    a = await send(engine, "q.fifo", "x", "g1", deduplication_id="d")
    b = await send(engine, "q.fifo", "x", "g2", deduplication_id="d")
    assert a["MessageId"] == b["MessageId"]
    assert len(await receive(engine, "q.fifo")) == 1


async def test_high_throughput_mode_dedups_per_group(engine: Engine):
    attrs = {
        **FIFO,
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }
    await engine.create_queue("q.fifo", attrs)
    got = await engine.get_queue_attributes("q.fifo", ["DeduplicationScope", "FifoThroughputLimit"])
    assert got == {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}

    a = await send(engine, "q.fifo", "x", "g1", deduplication_id="d")
    b = await send(engine, "q.fifo", "x", "g2", deduplication_id="d")
    c = await send(engine, "q.fifo", "x", "g1", deduplication_id="d")
    assert a["MessageId"] != b["MessageId"]
    assert c["MessageId"] == a["MessageId"]
    msgs = await receive(engine, "q.fifo")
    assert sorted(m["Attributes"]["MessageGroupId"] for m in msgs) == ["g1", "g2"]


async def test_high_throughput_mode_set_later(engine: Engine):
    await engine.create_queue("q.fifo", FIFO)
    await engine.set_queue_attributes(
        "q.fifo", {"DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"}
    )
    a = await send(engine, "q.fifo", "x", "g1", deduplication_id="d")
    b = await send(engine, "q.fifo", "x", "g2", deduplication_id="d")
    assert a["MessageId"] != b["MessageId"]


# -- rejected sends ----------------------------------------------------------------------------------


async def test_message_group_id_required(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    with pytest.raises(SqsError) as err:
        await engine.send_message("q.fifo", "m")
    assert err.value.code == "MissingParameter"
    # AWS refuses the whole batch, not the entry, when a FIFO entry has no MessageGroupId.
    with pytest.raises(SqsError) as err:
        await engine.send_message_batch(
            "q.fifo", [{"Id": "a", "MessageBody": "m"}, {"Id": "b", "MessageBody": "n", "MessageGroupId": "g"}]
        )
    assert err.value.code == "MissingParameter"
    assert err.value.message == "The request must contain the parameter MessageGroupId."
    assert await receive(engine, "q.fifo") == []


async def test_per_message_delay_refused(engine: Engine):
    await engine.create_queue("q.fifo", CONTENT)
    with pytest.raises(SqsError) as err:
        await send(engine, "q.fifo", "m", "g", delay_seconds=5)
    assert err.value.code == "InvalidParameterValue"
    assert await receive(engine, "q.fifo") == []


async def test_dedup_id_required_without_content_based_dedup(engine: Engine):
    await engine.create_queue("q.fifo", FIFO)
    with pytest.raises(SqsError) as err:
        await send(engine, "q.fifo", "m", "g")
    assert err.value.code == "InvalidParameterValue"
    assert "ContentBasedDeduplication" in err.value.message
    # AWS refuses the whole batch when one FIFO entry lacks a deduplication id: nothing is sent.
    with pytest.raises(SqsError) as err:
        await engine.send_message_batch(
            "q.fifo",
            [
                {"Id": "bad", "MessageBody": "m", "MessageGroupId": "g"},
                {"Id": "good", "MessageBody": "m", "MessageGroupId": "g", "MessageDeduplicationId": "d"},
            ],
        )
    assert err.value.code == "InvalidParameterValue"
    assert await receive(engine, "q.fifo") == []


# -- ReceiveRequestAttemptId -------------------------------------------------------------------------


async def test_receive_attempt_id_retry_returns_same_messages(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", CONTENT)
    await send(engine, "q.fifo", "a1", "A")
    await send(engine, "q.fifo", "a2", "A")
    clock.advance(0.01)
    await send(engine, "q.fifo", "b1", "B")

    first = await receive(engine, "q.fifo", 2, receive_request_attempt_id="attempt-1")
    assert bodies(first) == ["a1", "a2"]
    retry = await receive(engine, "q.fifo", 2, receive_request_attempt_id="attempt-1")
    assert [m["MessageId"] for m in retry] == [m["MessageId"] for m in first]
    assert [m["ReceiptHandle"] for m in retry] == [m["ReceiptHandle"] for m in first]
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in retry] == ["1", "1"]

    other = await receive(engine, "q.fifo", 2, receive_request_attempt_id="attempt-2")
    assert bodies(other) == ["b1"]
    assert await receive(engine, "q.fifo", 2, receive_request_attempt_id="attempt-3") == []

    # the retried handles are the live ones
    await delete_all(engine, "q.fifo", retry)
    assert await receive(engine, "q.fifo") == []  # B still in flight, A empty


async def test_receive_attempt_id_starts_afresh_after_a_change(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "10"})
    await send(engine, "q.fifo", "m1", "g")
    await send(engine, "q.fifo", "m2", "g")
    first = await receive(engine, "q.fifo", 1, receive_request_attempt_id="x")
    assert bodies(first) == ["m1"]
    await engine.delete_message("q.fifo", first[0]["ReceiptHandle"])
    after_delete = await receive(engine, "q.fifo", 1, receive_request_attempt_id="x")
    assert bodies(after_delete) == ["m2"]

    clock.advance(11)  # m2's visibility expires: the same attempt id receives it afresh
    again = await receive(engine, "q.fifo", 1, receive_request_attempt_id="x")
    assert bodies(again) == ["m2"]
    assert again[0]["ReceiptHandle"] != after_delete[0]["ReceiptHandle"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_receive_attempt_id_survives_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "attempt.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q.fifo", CONTENT)
        await send(engine, "q.fifo", "m", "g")
        first = await receive(engine, "q.fifo", receive_request_attempt_id="r")
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        retry = await receive(engine, "q.fifo", receive_request_attempt_id="r")
    assert [m["ReceiptHandle"] for m in retry] == [m["ReceiptHandle"] for m in first]


# -- durability of group state -----------------------------------------------------------------------


async def test_group_hold_and_order_survive_restart(tmp_path: Path, clock: ManualClock):
    path = tmp_path / "groups.db"
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "30"})
        for body in ("m1", "m2", "m3"):
            await send(engine, "q.fifo", body, "g")
        await send(engine, "q.fifo", "other", "h")
        first = await receive(engine, "q.fifo", 1)
        assert bodies(first) == ["m1"]
    async with Engine(EngineConfig(path=path, clock=clock)) as engine:
        other = await receive(engine, "q.fifo")
        assert bodies(other) == ["other"]
        await delete_all(engine, "q.fifo", other)
        clock.advance(31)
        assert bodies(await receive(engine, "q.fifo")) == ["m1", "m2", "m3"]


# -- long polling ------------------------------------------------------------------------------------


async def test_long_poll_returns_when_group_is_released_by_delete(engine: Engine):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "30"})
    await send(engine, "q.fifo", "m1", "g")
    await send(engine, "q.fifo", "m2", "g")
    (m1,) = await receive(engine, "q.fifo", 1)
    poll = asyncio.create_task(engine.receive_message("q.fifo", wait_time_seconds=20))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not poll.done()  # the group is held
    await engine.delete_message("q.fifo", m1["ReceiptHandle"])
    assert bodies(await asyncio.wait_for(poll, 2)) == ["m2"]  # no clock time passed


async def test_long_poll_returns_when_group_is_released_by_batch_delete(engine: Engine):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "30"})
    await send(engine, "q.fifo", "m1", "g")
    await send(engine, "q.fifo", "m2", "g")
    (m1,) = await receive(engine, "q.fifo", 1)
    poll = asyncio.create_task(engine.receive_message("q.fifo", wait_time_seconds=20))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not poll.done()
    await engine.delete_message_batch("q.fifo", [{"Id": "a", "ReceiptHandle": m1["ReceiptHandle"]}])
    assert bodies(await asyncio.wait_for(poll, 2)) == ["m2"]


async def test_long_poll_returns_when_group_is_released_by_visibility_zero(engine: Engine):
    await engine.create_queue("q.fifo", {**CONTENT, "VisibilityTimeout": "30"})
    await send(engine, "q.fifo", "m1", "g")
    (m1,) = await receive(engine, "q.fifo", 1)
    poll = asyncio.create_task(engine.receive_message("q.fifo", wait_time_seconds=20))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not poll.done()
    await engine.change_message_visibility("q.fifo", m1["ReceiptHandle"], 0)
    assert bodies(await asyncio.wait_for(poll, 2)) == ["m1"]


# -- retention ---------------------------------------------------------------------------------------


async def test_retention_in_fifo_does_not_block_the_group(engine: Engine, clock: ManualClock):
    await engine.create_queue("q.fifo", {**CONTENT, "MessageRetentionPeriod": "60", "VisibilityTimeout": "10"})
    await send(engine, "q.fifo", "old1", "g")
    await send(engine, "q.fifo", "old2", "g")
    assert bodies(await receive(engine, "q.fifo", 1)) == ["old1"]  # released by its visibility timeout
    clock.advance(61)
    assert await receive(engine, "q.fifo") == []
    counts = await engine.get_queue_attributes("q.fifo", ["ApproximateNumberOfMessages"])
    assert counts == {"ApproximateNumberOfMessages": "0"}
    await send(engine, "q.fifo", "new", "g")
    assert bodies(await receive(engine, "q.fifo")) == ["new"]
