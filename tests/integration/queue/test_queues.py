"""Queue management on a real SQLite file: CreateQueue .. RemovePermission with AWS SQS's rules and codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from scte.queue import Engine, EngineConfig, ManualClock, SqsError

ACCOUNT = "123456789012"
REGION = "us-east-1"

READ_ONLY = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)

# name: (AWS minimum, AWS maximum, default when not given or None when the queue has none)
INTEGER_ATTRIBUTES: dict[str, tuple[int, int, str | None]] = {
    "VisibilityTimeout": (0, 43_200, "30"),
    "MessageRetentionPeriod": (60, 1_209_600, "345600"),
    "DelaySeconds": (0, 900, "0"),
    "ReceiveMessageWaitTimeSeconds": (0, 20, "0"),
    "MaximumMessageSize": (1_024, 1_048_576, "1048576"),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400, None),
}


def arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


async def fails(code: str, call: Awaitable[Any]) -> SqsError:
    with pytest.raises(SqsError) as info:
        await call
    assert info.value.code == code, f"{info.value.code}: {info.value.message}"
    assert info.value.message
    return info.value


async def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a failed call must leave as it was: the queues, their attributes and their tags."""
    names, _ = await engine.list_queues()
    return {name: (await engine.get_queue_attributes(name), await engine.list_queue_tags(name)) for name in names}


def redrive(target: str, count: object = 5) -> str:
    return json.dumps({"deadLetterTargetArn": arn(target), "maxReceiveCount": count})


# -- create ------------------------------------------------------------------------------------------------


async def test_create_standard_queue_has_the_aws_defaults(engine: Engine, clock: ManualClock) -> None:
    assert await engine.create_queue("orders") == "orders"
    attributes = await engine.get_queue_attributes("orders")
    now = str(int(clock.now()))
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "CreatedTimestamp": now,
        "LastModifiedTimestamp": now,
        "QueueArn": arn("orders"),
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
    }
    assert engine.queue_exists("orders")
    assert not engine.is_fifo("orders")
    assert await engine.get_queue_url_name("orders") == "orders"


async def test_create_fifo_queue_has_the_fifo_defaults(engine: Engine) -> None:
    assert await engine.create_queue("orders.fifo", {"FifoQueue": "true"}) == "orders.fifo"
    attributes = await engine.get_queue_attributes("orders.fifo")
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert attributes["DeduplicationScope"] == "queue"
    assert attributes["FifoThroughputLimit"] == "perQueue"
    assert attributes["QueueArn"] == arn("orders.fifo")
    assert attributes["VisibilityTimeout"] == "30"
    assert engine.is_fifo("orders.fifo")


async def test_fifo_queue_false_on_a_standard_queue_is_refused(engine: Engine) -> None:
    # AWS: a standard queue has no FifoQueue attribute, even false (issue 15).
    await fails("InvalidAttributeName", engine.create_queue("plain", {"FifoQueue": "false"}))
    assert not engine.queue_exists("plain")


@pytest.mark.parametrize("name", sorted(INTEGER_ATTRIBUTES))
async def test_integer_attribute_bounds_on_create(engine: Engine, name: str) -> None:
    low, high, default = INTEGER_ATTRIBUTES[name]
    await engine.create_queue("q-default")
    assert (await engine.get_queue_attributes("q-default")).get(name) == default

    await engine.create_queue("q-low", {name: str(low)})
    await engine.create_queue("q-high", {name: str(high)})
    assert (await engine.get_queue_attributes("q-low", [name])) == {name: str(low)}
    assert (await engine.get_queue_attributes("q-high", [name])) == {name: str(high)}

    before = await snapshot(engine)
    for bad in (str(low - 1), str(high + 1), "ten", "1.5", ""):
        await fails("InvalidAttributeValue", engine.create_queue("q-bad", {name: bad}))
    assert await snapshot(engine) == before
    assert not engine.queue_exists("q-bad")


@pytest.mark.parametrize("name", sorted(INTEGER_ATTRIBUTES))
async def test_integer_attribute_bounds_on_set(engine: Engine, name: str) -> None:
    low, high, _default = INTEGER_ATTRIBUTES[name]
    await engine.create_queue("q")
    await engine.set_queue_attributes("q", {name: str(low)})
    assert (await engine.get_queue_attributes("q", [name]))[name] == str(low)
    await engine.set_queue_attributes("q", {name: str(high)})
    assert (await engine.get_queue_attributes("q", [name]))[name] == str(high)
    before = await snapshot(engine)
    for bad in (str(low - 1), str(high + 1), "x"):
        await fails("InvalidAttributeValue", engine.set_queue_attributes("q", {name: bad}))
    assert await snapshot(engine) == before


async def test_integer_attributes_given_as_int_are_stored_as_decimal_text(engine: Engine) -> None:
    await engine.create_queue("q", {"VisibilityTimeout": 45, "DelaySeconds": "007"})  # type: ignore[dict-item]
    attributes = await engine.get_queue_attributes("q", ["VisibilityTimeout", "DelaySeconds"])
    assert attributes == {"VisibilityTimeout": "45", "DelaySeconds": "7"}


async def test_fifo_enum_and_boolean_attributes(engine: Engine) -> None:
    await engine.create_queue(
        "hi.fifo",
        {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )
    attributes = await engine.get_queue_attributes(
        "hi.fifo", ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"]
    )
    assert attributes == {
        "ContentBasedDeduplication": "true",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }
    before = await snapshot(engine)
    for bad in (
        {"DeduplicationScope": "global"},
        {"FifoThroughputLimit": "perAccount"},
        {"ContentBasedDeduplication": "maybe"},
        {"FifoQueue": "yes"},
    ):
        await fails("InvalidAttributeValue", engine.create_queue("bad.fifo", {"FifoQueue": "true", **bad}))
    # perMessageGroupId needs DeduplicationScope=messageGroup
    await fails(
        "InvalidAttributeValue",
        engine.create_queue("bad.fifo", {"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId"}),
    )
    await fails("InvalidAttributeValue", engine.set_queue_attributes("hi.fifo", {"DeduplicationScope": "queue"}))
    assert await snapshot(engine) == before


async def test_unknown_attribute_name_is_refused(engine: Engine) -> None:
    await engine.create_queue("q")
    before = await snapshot(engine)
    await fails("InvalidAttributeName", engine.create_queue("other", {"Colour": "blue"}))
    await fails("InvalidAttributeName", engine.create_queue("q", {"Colour": "blue"}))
    await fails("InvalidAttributeName", engine.set_queue_attributes("q", {"Colour": "blue"}))
    await fails("InvalidAttributeName", engine.get_queue_attributes("q", ["Colour"]))
    await fails("InvalidAttributeName", engine.get_queue_attributes("q", ["VisibilityTimeout", ""]))
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    "attribute",
    [
        {"ContentBasedDeduplication": "true"},
        {"ContentBasedDeduplication": "false"},
        {"DeduplicationScope": "queue"},
        {"FifoThroughputLimit": "perQueue"},
    ],
)
async def test_fifo_only_attributes_on_a_standard_queue(engine: Engine, attribute: dict[str, str]) -> None:
    await engine.create_queue("std")
    before = await snapshot(engine)
    await fails("InvalidAttributeName", engine.create_queue("other", attribute))
    await fails("InvalidAttributeName", engine.set_queue_attributes("std", attribute))
    assert await snapshot(engine) == before


async def test_fifo_name_rules(engine: Engine) -> None:
    # A .fifo name needs FifoQueue=true, and FifoQueue=true needs a .fifo name.
    await fails("InvalidParameterValue", engine.create_queue("jobs.fifo"))
    await fails("InvalidAttributeName", engine.create_queue("jobs.fifo", {"FifoQueue": "false"}))
    await fails("InvalidParameterValue", engine.create_queue("jobs", {"FifoQueue": "true"}))
    await fails("InvalidParameterValue", engine.create_queue("jobs.FIFO", {"FifoQueue": "true"}))
    await fails("InvalidParameterValue", engine.create_queue(".fifo", {"FifoQueue": "true"}))
    # The 80 characters include the suffix.
    await engine.create_queue("f" * 75 + ".fifo", {"FifoQueue": "true"})
    await fails("InvalidParameterValue", engine.create_queue("f" * 76 + ".fifo", {"FifoQueue": "true"}))
    assert (await engine.list_queues())[0] == ["f" * 75 + ".fifo"]


@pytest.mark.parametrize(
    "name", ["a" * 81, "has space", "dot.ted", "slash/name", "colon:name", "ümlaut", "star*", "tab\t"]
)
async def test_invalid_queue_names(engine: Engine, name: str) -> None:
    await fails("InvalidParameterValue", engine.create_queue(name))
    assert await engine.list_queues() == ([], None)


async def test_queue_name_limits_and_missing_name(engine: Engine) -> None:
    await engine.create_queue("a" * 80)
    await engine.create_queue("A-z_0-9")
    await engine.create_queue("x")
    await fails("MissingParameter", engine.create_queue(""))
    assert (await engine.list_queues())[0] == ["A-z_0-9", "a" * 80, "x"]


async def test_create_is_idempotent_with_the_same_attributes(engine: Engine, clock: ManualClock) -> None:
    attributes = {"VisibilityTimeout": "60", "DelaySeconds": "5"}
    await engine.create_queue("q", attributes, {"team": "a"})
    before = await snapshot(engine)
    clock.advance(10)
    assert await engine.create_queue("q", attributes) == "q"
    assert await engine.create_queue("q", {"VisibilityTimeout": "60"}) == "q"  # a subset is compared
    assert await engine.create_queue("q") == "q"  # no attributes: the existing queue
    assert await engine.create_queue("q", {"MaximumMessageSize": "1048576"}) == "q"  # the default, stated
    await engine.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    before = await snapshot(engine)
    assert await engine.create_queue("f.fifo", {"FifoQueue": "true"}) == "f.fifo"
    await engine.create_queue("dlq")
    await engine.create_queue("src", {"RedrivePolicy": redrive("dlq", 3)})
    before = await snapshot(engine)
    assert await engine.create_queue("src", {"RedrivePolicy": redrive("dlq", "3")}) == "src"  # same, normalised
    assert await engine.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}) == "f.fifo"
    assert await snapshot(engine) == before


async def test_create_with_different_attributes_is_queue_name_exists(engine: Engine) -> None:
    await engine.create_queue("q", {"VisibilityTimeout": "60"})
    await engine.create_queue("f.fifo", {"FifoQueue": "true"})
    before = await snapshot(engine)
    error = await fails("QueueNameExists", engine.create_queue("q", {"VisibilityTimeout": "61"}))
    assert error.query_code == "QueueAlreadyExists"
    await fails("QueueNameExists", engine.create_queue("q", {"DelaySeconds": "1"}))
    await fails(
        "QueueNameExists", engine.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    )
    assert await snapshot(engine) == before


# -- delete, purge, list -----------------------------------------------------------------------------------


async def test_delete_queue_then_every_use_is_queue_does_not_exist(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("gone")
    await engine.create_queue("stays")
    await engine.send_message("gone", "hello")
    await engine.delete_queue("gone")
    assert (await engine.list_queues())[0] == ["stays"]
    assert not engine.queue_exists("gone")
    error = await fails("QueueDoesNotExist", engine.get_queue_attributes("gone"))
    assert error.query_code == "AWS.SimpleQueueService.NonExistentQueue"
    await fails("QueueDoesNotExist", engine.get_queue_url_name("gone"))
    await fails("QueueDoesNotExist", engine.send_message("gone", "x"))
    await fails("QueueDoesNotExist", engine.receive_message("gone"))
    await fails("QueueDoesNotExist", engine.set_queue_attributes("gone", {"DelaySeconds": "1"}))
    await fails("QueueDoesNotExist", engine.purge_queue("gone"))
    await fails("QueueDoesNotExist", engine.tag_queue("gone", {"a": "b"}))
    await fails("QueueDoesNotExist", engine.list_queue_tags("gone"))
    await fails("QueueDoesNotExist", engine.delete_queue("gone"))
    # A queue created again under the name (60 s later, as AWS asks) starts empty.
    clock.advance(60)
    await engine.create_queue("gone")
    assert (await engine.get_queue_attributes("gone", ["ApproximateNumberOfMessages"])) == {
        "ApproximateNumberOfMessages": "0"
    }
    assert await engine.receive_message("gone") == []


async def test_a_deleted_name_is_refused_for_60_seconds(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    await engine.create_queue("other")
    await engine.delete_queue("q")
    error = await fails("QueueDeletedRecently", engine.create_queue("q"))
    assert error.query_code == "AWS.SimpleQueueService.QueueDeletedRecently"
    assert "60 seconds" in error.message
    assert not engine.queue_exists("q")
    await engine.create_queue("q2")  # other names are free
    clock.advance(59.9)
    await fails("QueueDeletedRecently", engine.create_queue("q"))
    clock.advance(0.1)
    await engine.create_queue("q")
    assert await engine.receive_message("q") == []


async def test_a_second_purge_within_60_seconds_is_refused_and_changes_nothing(
    engine: Engine, clock: ManualClock
) -> None:
    await engine.create_queue("q")
    await engine.create_queue("other")
    await engine.purge_queue("q")
    await engine.purge_queue("other")  # each queue has its own 60 s
    await engine.send_message("q", "after the purge")
    error = await fails("PurgeQueueInProgress", engine.purge_queue("q"))
    assert error.query_code == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert "every 60 seconds" in error.message
    clock.advance(59)
    await fails("PurgeQueueInProgress", engine.purge_queue("q"))
    (message,) = await engine.receive_message("q")
    assert message["Body"] == "after the purge"
    clock.advance(1)
    await engine.purge_queue("q")
    clock.advance(60)  # past the visibility timeout: the purge removed the in-flight message too
    assert await engine.receive_message("q") == []


async def test_purge_removes_every_message(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    await engine.create_queue("other")
    for i in range(3):
        await engine.send_message("q", f"m{i}")
    await engine.send_message("q", "later", delay_seconds=60)
    await engine.send_message("other", "untouched")
    assert len(await engine.receive_message("q")) == 1
    await engine.purge_queue("q")
    counts = await engine.get_queue_attributes(
        "q",
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    assert set(counts.values()) == {"0"}
    clock.advance(120)
    assert await engine.receive_message("q", max_number=10) == []
    assert [m["Body"] for m in await engine.receive_message("other")] == ["untouched"]
    # the queue itself is still usable
    await engine.send_message("q", "after")
    assert [m["Body"] for m in await engine.receive_message("q")] == ["after"]


async def test_list_queues_by_prefix(engine: Engine) -> None:
    for name in ("beta", "alpha-1", "alpha-2", "alp", "gamma.fifo"):
        await engine.create_queue(name, {"FifoQueue": "true"} if name.endswith(".fifo") else None)
    assert await engine.list_queues() == (["alp", "alpha-1", "alpha-2", "beta", "gamma.fifo"], None)
    assert await engine.list_queues("alpha") == (["alpha-1", "alpha-2"], None)
    assert await engine.list_queues("alp") == (["alp", "alpha-1", "alpha-2"], None)
    assert await engine.list_queues("gamma") == (["gamma.fifo"], None)
    assert await engine.list_queues("delta") == ([], None)
    assert await engine.list_queues("Alpha") == ([], None)  # prefixes are case-sensitive


async def test_list_queues_pagination(engine: Engine) -> None:
    names = [f"page-{i:02d}" for i in range(8)]
    for name in [*reversed(names), "other"]:
        await engine.create_queue(name)
    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page, token = await engine.list_queues("page-", max_results=3, next_token=token)
        pages += 1
        assert len(page) <= 3
        seen.extend(page)
        if token is None:
            break
        assert pages < 10
    assert pages == 3
    assert seen == names
    # exact multiple: no token after the last full page
    page, token = await engine.list_queues("page-", max_results=4)
    assert page == names[:4] and token is not None
    page, token = await engine.list_queues("page-", max_results=4, next_token=token)
    assert page == names[4:] and token is None
    # everything in one page
    assert await engine.list_queues(max_results=1000) == (["other", *names], None)
    page, token = await engine.list_queues(max_results=1)
    assert page == ["other"] and token is not None
    page, token = await engine.list_queues(max_results=1, next_token=token)
    assert page == [names[0]] and token is not None


async def test_list_queues_refuses_bad_token_and_bad_max_results(engine: Engine) -> None:
    for i in range(3):
        await engine.create_queue(f"q{i}")
    for bad in (0, -1, 1001, "many"):
        await fails("InvalidParameterValue", engine.list_queues(max_results=bad))  # type: ignore[arg-type]
    for token in ("garbage!", "bm90IGpzb24=", "eyJub3QiOiAiaXQifQ==", "WzEsIDJd"):
        await fails("InvalidParameterValue", engine.list_queues(max_results=2, next_token=token))
    assert (await engine.list_queues())[0] == ["q0", "q1", "q2"]


# -- attributes --------------------------------------------------------------------------------------------


async def test_get_selected_attributes_only(engine: Engine) -> None:
    await engine.create_queue("q", {"VisibilityTimeout": "45"})
    assert await engine.get_queue_attributes("q", ["VisibilityTimeout", "QueueArn"]) == {
        "VisibilityTimeout": "45",
        "QueueArn": arn("q"),
    }
    assert await engine.get_queue_attributes("q", ["ApproximateNumberOfMessages"]) == {
        "ApproximateNumberOfMessages": "0"
    }
    assert await engine.get_queue_attributes("q", []) == {}
    # an attribute the queue does not have is left out
    assert await engine.get_queue_attributes("q", ["RedrivePolicy", "Policy", "FifoQueue"]) == {}
    everything = await engine.get_queue_attributes("q", ["All"])
    assert everything == await engine.get_queue_attributes("q")
    assert await engine.get_queue_attributes("q", ["All", "VisibilityTimeout"]) == everything
    assert engine.queue_arn("q") == arn("q")


async def test_message_counts(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]

    async def counts() -> tuple[int, int, int]:
        attributes = await engine.get_queue_attributes("q", names)
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )

    assert await counts() == (0, 0, 0)
    for i in range(3):
        await engine.send_message("q", f"m{i}")
    assert await counts() == (3, 0, 0)
    received = await engine.receive_message("q", max_number=2, visibility_timeout=30)
    assert len(received) == 2
    assert await counts() == (1, 2, 0)
    await engine.send_message("q", "delayed", delay_seconds=10)
    assert await counts() == (1, 2, 1)
    await engine.delete_message("q", received[0]["ReceiptHandle"])
    assert await counts() == (1, 1, 1)
    clock.advance(10)
    assert await counts() == (2, 1, 0)
    clock.advance(20)
    assert await counts() == (3, 0, 0)


async def test_queue_gauges_agree_with_the_attributes(engine: Engine, clock: ManualClock) -> None:
    """The metrics' per-queue gauges: visible, in flight, delayed, and the oldest message's age."""
    await engine.create_queue("q")
    await engine.create_queue("dlq")
    await engine.create_queue("empty")
    assert (await engine.queue_gauges())["q"] == (0, 0, 0, 0.0)
    await engine.send_message("q", "first")
    clock.advance(5)
    for i in range(3):
        await engine.send_message("q", f"m{i}")
    await engine.send_message("q", "delayed", delay_seconds=60)
    received = await engine.receive_message("q", max_number=2, visibility_timeout=30)
    assert len(received) == 2
    clock.advance(2)
    gauges = await engine.queue_gauges()
    assert gauges["q"] == (2, 2, 1, 7.0)  # the oldest was sent 7 s ago
    assert gauges["empty"] == (0, 0, 0, 0.0)
    first = next(m for m in received if m["Body"] == "first")
    await engine.delete_message("q", first["ReceiptHandle"])
    assert (await engine.queue_gauges())["q"] == (2, 1, 1, 2.0)  # now the oldest left is 2 s old
    clock.advance(60)
    assert (await engine.queue_gauges())["q"] == (4, 0, 0, 62.0)
    attributes = await engine.get_queue_attributes("q", ["ApproximateNumberOfMessages"])
    assert attributes["ApproximateNumberOfMessages"] == "4"


async def test_timestamps_and_last_modified(engine: Engine, clock: ManualClock) -> None:
    created = int(clock.now())
    await engine.create_queue("q")
    clock.advance(100)
    await engine.send_message("q", "does not modify the queue")
    attributes = await engine.get_queue_attributes("q", ["CreatedTimestamp", "LastModifiedTimestamp"])
    assert attributes == {"CreatedTimestamp": str(created), "LastModifiedTimestamp": str(created)}
    await engine.set_queue_attributes("q", {"VisibilityTimeout": "99"})
    attributes = await engine.get_queue_attributes("q", ["CreatedTimestamp", "LastModifiedTimestamp"])
    assert attributes == {"CreatedTimestamp": str(created), "LastModifiedTimestamp": str(created + 100)}
    clock.advance(50)
    await fails("InvalidAttributeValue", engine.set_queue_attributes("q", {"VisibilityTimeout": "-1"}))
    attributes = await engine.get_queue_attributes("q", ["LastModifiedTimestamp", "VisibilityTimeout"])
    assert attributes == {"LastModifiedTimestamp": str(created + 100), "VisibilityTimeout": "99"}


@pytest.mark.parametrize("name", READ_ONLY)
async def test_read_only_attributes_cannot_be_set(engine: Engine, name: str) -> None:
    await engine.create_queue("q")
    before = await snapshot(engine)
    await fails("InvalidAttributeName", engine.set_queue_attributes("q", {name: "1"}))
    await fails("InvalidAttributeName", engine.create_queue("other", {name: "1"}))
    assert await snapshot(engine) == before


async def test_queue_type_cannot_change(engine: Engine) -> None:
    await engine.create_queue("std")
    await engine.create_queue("f.fifo", {"FifoQueue": "true"})
    before = await snapshot(engine)
    await fails("InvalidAttributeName", engine.set_queue_attributes("std", {"FifoQueue": "true"}))
    await fails("InvalidAttributeValue", engine.set_queue_attributes("f.fifo", {"FifoQueue": "false"}))
    assert await snapshot(engine) == before
    await engine.set_queue_attributes("f.fifo", {"FifoQueue": "true"})  # restating it is harmless
    assert engine.is_fifo("f.fifo") and not engine.is_fifo("std")


async def test_set_is_all_or_nothing(engine: Engine) -> None:
    await engine.create_queue("q")
    before = await snapshot(engine)
    await fails(
        "InvalidAttributeValue",
        engine.set_queue_attributes("q", {"VisibilityTimeout": "60", "DelaySeconds": "901"}),
    )
    await fails(
        "InvalidAttributeName",
        engine.set_queue_attributes("q", {"VisibilityTimeout": "60", "Nope": "1"}),
    )
    await fails(
        "InvalidParameterValue",
        engine.set_queue_attributes("q", {"VisibilityTimeout": "60", "RedrivePolicy": redrive("missing")}),
    )
    assert await snapshot(engine) == before
    await engine.set_queue_attributes("q", {"VisibilityTimeout": "60", "DelaySeconds": "900"})
    attributes = await engine.get_queue_attributes("q", ["VisibilityTimeout", "DelaySeconds"])
    assert attributes == {"VisibilityTimeout": "60", "DelaySeconds": "900"}


# -- redrive -----------------------------------------------------------------------------------------------


async def test_redrive_policy_is_validated_and_stored(engine: Engine) -> None:
    await engine.create_queue("dlq")
    await engine.create_queue("src", {"RedrivePolicy": redrive("dlq", 5)})
    stored = json.loads((await engine.get_queue_attributes("src", ["RedrivePolicy"]))["RedrivePolicy"])
    assert stored == {"deadLetterTargetArn": arn("dlq"), "maxReceiveCount": 5}
    assert (await engine.list_dead_letter_source_queues("dlq"))[0] == ["src"]

    await engine.create_queue("src2", {"RedrivePolicy": redrive("dlq", "7")})  # numeric text, as AWS allows
    stored = json.loads((await engine.get_queue_attributes("src2", ["RedrivePolicy"]))["RedrivePolicy"])
    assert stored["maxReceiveCount"] == 7

    for count in (1, 1000):
        await engine.set_queue_attributes("src", {"RedrivePolicy": redrive("dlq", count)})
        stored = json.loads((await engine.get_queue_attributes("src", ["RedrivePolicy"]))["RedrivePolicy"])
        assert stored["maxReceiveCount"] == count

    before = await snapshot(engine)
    for bad in (
        redrive("dlq", 0),
        redrive("dlq", 1001),
        redrive("dlq", "many"),
        redrive("missing"),
        '{"deadLetterTargetArn": "' + arn("dlq") + '"',  # truncated JSON
        "not json",
        "[]",
        json.dumps({"deadLetterTargetArn": arn("dlq")}),
        json.dumps({"maxReceiveCount": 3}),
        json.dumps({"deadLetterTargetArn": "dlq", "maxReceiveCount": 3}),
        json.dumps({"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:999999999999:dlq", "maxReceiveCount": 3}),
    ):
        await fails("InvalidParameterValue", engine.set_queue_attributes("src", {"RedrivePolicy": bad}))
        await fails("InvalidParameterValue", engine.create_queue("src3", {"RedrivePolicy": bad}))
    assert await snapshot(engine) == before

    # a padded attribute name means the trimmed one, and is checked as strictly
    await fails("InvalidParameterValue", engine.set_queue_attributes("src", {"RedrivePolicy ": redrive("missing")}))
    await fails("InvalidParameterValue", engine.create_queue("src3", {" RedrivePolicy": redrive("missing")}))
    assert await snapshot(engine) == before

    await engine.set_queue_attributes("src", {"RedrivePolicy": ""})  # "" removes the policy
    assert "RedrivePolicy" not in await engine.get_queue_attributes("src")
    assert (await engine.list_dead_letter_source_queues("dlq"))[0] == ["src2"]


async def test_dead_letter_queue_must_have_the_same_type(engine: Engine) -> None:
    await engine.create_queue("dlq")
    await engine.create_queue("dlq.fifo", {"FifoQueue": "true"})
    await engine.create_queue("src")
    await engine.create_queue("src.fifo", {"FifoQueue": "true"})
    before = await snapshot(engine)
    await fails("InvalidParameterValue", engine.set_queue_attributes("src", {"RedrivePolicy": redrive("dlq.fifo")}))
    await fails("InvalidParameterValue", engine.set_queue_attributes("src.fifo", {"RedrivePolicy": redrive("dlq")}))
    await fails(
        "InvalidParameterValue",
        engine.create_queue("new.fifo", {"FifoQueue": "true", "RedrivePolicy": redrive("dlq")}),
    )
    await fails("InvalidParameterValue", engine.create_queue("new", {"RedrivePolicy": redrive("dlq.fifo")}))
    assert await snapshot(engine) == before
    await engine.set_queue_attributes("src.fifo", {"RedrivePolicy": redrive("dlq.fifo")})
    await engine.set_queue_attributes("src", {"RedrivePolicy": redrive("dlq")})


async def test_redrive_allow_policy(engine: Engine) -> None:
    await engine.create_queue("closed", {"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
    await engine.create_queue(
        "picky",
        {"RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn("chosen")]})},
    )
    await engine.create_queue("open", {"RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})})
    stored = await engine.get_queue_attributes("picky", ["RedriveAllowPolicy"])
    assert json.loads(stored["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [arn("chosen")],
    }
    await engine.create_queue("chosen", {"RedrivePolicy": redrive("picky")})
    await engine.create_queue("anyone", {"RedrivePolicy": redrive("open")})
    before = await snapshot(engine)
    await fails("InvalidParameterValue", engine.create_queue("stranger", {"RedrivePolicy": redrive("picky")}))
    await fails("InvalidParameterValue", engine.create_queue("stranger", {"RedrivePolicy": redrive("closed")}))
    await fails("InvalidParameterValue", engine.set_queue_attributes("anyone", {"RedrivePolicy": redrive("closed")}))
    for bad in (
        json.dumps({"redrivePermission": "maybe"}),
        json.dumps({"redrivePermission": "byQueue"}),
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": []}),
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn(f"q{i}") for i in range(11)]}),
        json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["not-an-arn"]}),
        json.dumps({"redrivePermission": "denyAll", "sourceQueueArns": [arn("chosen")]}),
        "{",
    ):
        await fails("InvalidParameterValue", engine.set_queue_attributes("open", {"RedriveAllowPolicy": bad}))
    assert await snapshot(engine) == before
    assert not engine.queue_exists("stranger")


# -- policy and encryption ---------------------------------------------------------------------------------


async def test_policy_is_kept_as_sent_and_removable(engine: Engine) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn("q")}],
        },
        indent=1,
    )
    await engine.create_queue("q", {"Policy": policy})
    assert (await engine.get_queue_attributes("q", ["Policy"])) == {"Policy": policy}
    before = await snapshot(engine)
    await fails("InvalidAttributeValue", engine.set_queue_attributes("q", {"Policy": "{not json"}))
    await fails("InvalidAttributeValue", engine.set_queue_attributes("q", {"Policy": "[1, 2]"}))
    assert await snapshot(engine) == before
    await engine.set_queue_attributes("q", {"Policy": ""})
    assert "Policy" not in await engine.get_queue_attributes("q")


async def test_kms_attributes_are_kept(engine: Engine) -> None:
    await engine.create_queue("kms", {"KmsMasterKeyId": "alias/aws/sqs"})
    attributes = await engine.get_queue_attributes("kms")
    assert attributes["KmsMasterKeyId"] == "alias/aws/sqs"
    assert attributes["KmsDataKeyReusePeriodSeconds"] == "300"
    assert attributes["SqsManagedSseEnabled"] == "false"
    await engine.set_queue_attributes("kms", {"KmsDataKeyReusePeriodSeconds": "600"})
    assert (await engine.get_queue_attributes("kms", ["KmsDataKeyReusePeriodSeconds"])) == {
        "KmsDataKeyReusePeriodSeconds": "600"
    }
    await engine.create_queue("sse", {"SqsManagedSseEnabled": "false"})
    assert (await engine.get_queue_attributes("sse", ["SqsManagedSseEnabled"])) == {"SqsManagedSseEnabled": "false"}
    before = await snapshot(engine)
    await fails(
        "InvalidAttributeValue",
        engine.create_queue("both", {"KmsMasterKeyId": "alias/aws/sqs", "SqsManagedSseEnabled": "true"}),
    )
    await fails("InvalidAttributeValue", engine.set_queue_attributes("kms", {"SqsManagedSseEnabled": "true"}))
    await fails("InvalidAttributeValue", engine.set_queue_attributes("sse", {"SqsManagedSseEnabled": "sometimes"}))
    assert await snapshot(engine) == before
    # switching to SSE-SQS: drop the key in the same call
    await engine.set_queue_attributes("kms", {"KmsMasterKeyId": "", "SqsManagedSseEnabled": "true"})
    attributes = await engine.get_queue_attributes("kms")
    assert "KmsMasterKeyId" not in attributes
    assert attributes["SqsManagedSseEnabled"] == "true"


# -- tags --------------------------------------------------------------------------------------------------


async def test_tags(engine: Engine) -> None:
    await engine.create_queue("q", tags={"team": "core", "env": "test"})
    assert await engine.list_queue_tags("q") == {"team": "core", "env": "test"}
    await engine.tag_queue("q", {"env": "prod", "cost": ""})
    assert await engine.list_queue_tags("q") == {"team": "core", "env": "prod", "cost": ""}
    await engine.untag_queue("q", ["team", "not-there"])
    assert await engine.list_queue_tags("q") == {"env": "prod", "cost": ""}
    await engine.create_queue("bare")
    assert await engine.list_queue_tags("bare") == {}
    # tags are not attributes
    assert "team" not in await engine.get_queue_attributes("q")


async def test_tag_limits(engine: Engine) -> None:
    fifty = {f"k{i}": str(i) for i in range(50)}
    await engine.create_queue("full", tags=fifty)
    await engine.create_queue("q", tags={"k" * 128: "v" * 256})
    assert await engine.list_queue_tags("q") == {"k" * 128: "v" * 256}
    before = await snapshot(engine)
    await fails("InvalidParameterValue", engine.tag_queue("full", {"one-more": "x"}))
    await fails("InvalidParameterValue", engine.tag_queue("q", {"k" * 129: "v"}))
    await fails("InvalidParameterValue", engine.tag_queue("q", {"": "v"}))
    await fails("InvalidParameterValue", engine.tag_queue("q", {"key": "v" * 257}))
    await fails("InvalidParameterValue", engine.tag_queue("q", {"ok": "1", "key": "v" * 257}))
    await fails("MissingParameter", engine.tag_queue("q", {}))
    await fails("MissingParameter", engine.untag_queue("q", []))
    await fails("InvalidParameterValue", engine.create_queue("too-many", tags={**fifty, "x": "y"}))
    await fails("InvalidParameterValue", engine.create_queue("long-key", tags={"k" * 129: "v"}))
    assert await snapshot(engine) == before
    # replacing a tag of a full queue is allowed: still 50
    await engine.tag_queue("full", {"k0": "new"})
    assert (await engine.list_queue_tags("full"))["k0"] == "new"


# -- permissions -------------------------------------------------------------------------------------------


async def test_add_and_remove_permission(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q")
    clock.advance(5)
    await engine.add_permission("q", "send", ["111122223333"], ["SendMessage"])
    policy = json.loads((await engine.get_queue_attributes("q"))["Policy"])
    assert policy["Version"] == "2008-10-17"  # what AWS writes in AddPermission's policies
    assert policy["Statement"] == [
        {
            "Sid": "send",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "SQS:SendMessage",
            "Resource": arn("q"),
        }
    ]
    await engine.add_permission("q", "both", ["111122223333", "444455556666"], ["ReceiveMessage", "DeleteMessage"])
    policy = json.loads((await engine.get_queue_attributes("q"))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["send", "both"]
    assert policy["Statement"][1]["Principal"] == {
        "AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:root"]
    }
    assert policy["Statement"][1]["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage"]

    await engine.remove_permission("q", "send")
    policy = json.loads((await engine.get_queue_attributes("q"))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["both"]
    await engine.remove_permission("q", "both")
    assert "Policy" not in await engine.get_queue_attributes("q")


async def test_permission_errors_change_nothing(engine: Engine) -> None:
    await engine.create_queue("q")
    await engine.add_permission("q", "existing", ["111122223333"], ["*"])
    before = await snapshot(engine)
    await fails("InvalidParameterValue", engine.add_permission("q", "existing", ["111122223333"], ["SendMessage"]))
    await fails("InvalidParameterValue", engine.add_permission("q", "new", ["111122223333"], ["CreateQueue"]))
    await fails("InvalidParameterValue", engine.add_permission("q", "new", ["111122223333"], ["SendMessage", "Bogus"]))
    await fails("OverLimit", engine.add_permission("q", "new", ["111122223333"], ["SendMessage"] * 8))
    await fails("MissingParameter", engine.add_permission("q", "", ["111122223333"], ["SendMessage"]))
    await fails("MissingParameter", engine.add_permission("q", "new", [], ["SendMessage"]))
    await fails("MissingParameter", engine.add_permission("q", "new", ["111122223333"], []))
    await fails("QueueDoesNotExist", engine.add_permission("nope", "new", ["111122223333"], ["SendMessage"]))
    await fails("InvalidParameterValue", engine.remove_permission("q", "unknown"))
    await fails("MissingParameter", engine.remove_permission("q", ""))
    await fails("QueueDoesNotExist", engine.remove_permission("nope", "existing"))
    assert await snapshot(engine) == before
    await engine.create_queue("empty")
    await fails("InvalidParameterValue", engine.remove_permission("empty", "existing"))


async def test_add_permission_to_a_policy_with_a_single_statement_object(engine: Engine) -> None:
    # IAM allows "Statement" to be one object instead of a list.
    statement = {"Sid": "mine", "Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": arn("q")}
    await engine.create_queue("q", {"Policy": json.dumps({"Version": "2012-10-17", "Statement": statement})})
    await engine.add_permission("q", "added", ["111122223333"], ["SendMessage"])
    policy = json.loads((await engine.get_queue_attributes("q", ["Policy"]))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["mine", "added"]
    await engine.remove_permission("q", "mine")
    policy = json.loads((await engine.get_queue_attributes("q", ["Policy"]))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["added"]


async def test_concurrent_permission_changes_lose_nothing(engine: Engine) -> None:
    await engine.create_queue("q")
    await asyncio.gather(
        *(engine.add_permission("q", f"label{i}", ["111122223333"], ["SendMessage"]) for i in range(5))
    )
    policy = json.loads((await engine.get_queue_attributes("q", ["Policy"]))["Policy"])
    assert sorted(s["Sid"] for s in policy["Statement"]) == [f"label{i}" for i in range(5)]
    results = await asyncio.gather(
        engine.add_permission("q", "twice", ["111122223333"], ["SendMessage"]),
        engine.add_permission("q", "twice", ["111122223333"], ["SendMessage"]),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "SqsError"]
    await asyncio.gather(*(engine.remove_permission("q", f"label{i}") for i in range(5)))
    policy = json.loads((await engine.get_queue_attributes("q", ["Policy"]))["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["twice"]


# -- failures change nothing; persistence -------------------------------------------------------------------


async def test_failing_calls_change_nothing(engine: Engine, clock: ManualClock) -> None:
    await engine.create_queue("q", {"VisibilityTimeout": "60"}, {"t": "1"})
    await engine.create_queue("f.fifo", {"FifoQueue": "true"})
    await engine.send_message("q", "one")
    before = await snapshot(engine)
    clock.advance(1)
    failing = [
        ("InvalidAttributeValue", engine.create_queue("new", {"DelaySeconds": "-1"})),
        ("InvalidAttributeName", engine.create_queue("new", {"Unknown": "1"})),
        ("InvalidParameterValue", engine.create_queue("new!")),
        ("InvalidParameterValue", engine.create_queue("new", tags={"": "x"})),
        ("QueueNameExists", engine.create_queue("q", {"VisibilityTimeout": "30"})),
        ("InvalidAttributeValue", engine.set_queue_attributes("q", {"MaximumMessageSize": "1023"})),
        ("InvalidAttributeName", engine.set_queue_attributes("q", {"QueueArn": "x"})),
        ("InvalidParameterValue", engine.set_queue_attributes("q", {"RedrivePolicy": redrive("f.fifo")})),
        ("InvalidAttributeValue", engine.set_queue_attributes("f.fifo", {"FifoQueue": "false"})),
        ("QueueDoesNotExist", engine.delete_queue("missing")),
        ("QueueDoesNotExist", engine.purge_queue("missing")),
        ("InvalidParameterValue", engine.tag_queue("q", {"x" * 200: "y"})),
        ("InvalidParameterValue", engine.list_queues(max_results=0)),
        ("InvalidAttributeName", engine.get_queue_attributes("q", ["Nope"])),
    ]
    for code, call in failing:
        await fails(code, call)
    assert await snapshot(engine) == before


async def test_queues_survive_a_restart(tmp_path: Path, clock: ManualClock, engine: Engine) -> None:
    await engine.create_queue("dlq")
    await engine.create_queue(
        "q",
        {"VisibilityTimeout": "120", "DelaySeconds": "3", "RedrivePolicy": redrive("dlq", 4)},
        {"team": "core"},
    )
    await engine.create_queue("f.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    await engine.tag_queue("f.fifo", {"kind": "fifo"})
    await engine.add_permission("q", "send", ["111122223333"], ["SendMessage"])
    clock.advance(30)
    await engine.set_queue_attributes("dlq", {"MessageRetentionPeriod": "60"})
    await engine.send_message("q", "kept")
    before = await snapshot(engine)
    await engine.close()

    async with Engine(EngineConfig(path=tmp_path / "broker.db", clock=clock)) as reopened:
        assert await snapshot(reopened) == before
        assert reopened.is_fifo("f.fifo") and not reopened.is_fifo("q")
        assert (await reopened.list_dead_letter_source_queues("dlq"))[0] == ["q"]
        clock.advance(3)
        messages = await reopened.receive_message("q")
        assert [m["Body"] for m in messages] == ["kept"]
        await reopened.delete_queue("dlq")
        await reopened.create_queue("later")
    async with Engine(EngineConfig(path=tmp_path / "broker.db", clock=clock)) as third:
        assert (await third.list_queues())[0] == ["f.fifo", "later", "q"]
