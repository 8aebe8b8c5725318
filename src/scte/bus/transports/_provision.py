"""What both transports share: physical names, message attribute shapes, and `provision`.

Provisioning is written once against `BrokerOps`, the handful of SQS/SNS calls it needs; each
transport supplies them (engine calls, or aiobotocore calls).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from scte.bus.topology import QueueSpec, Topology
from scte.bus.transport import OutgoingMessage

log = logging.getLogger("scte.bus.provision")

FIFO_SUFFIX = ".fifo"
RECEIVE_SYSTEM_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "MessageGroupId")
MAX_BATCH = 10
MAX_SNS_BATCH_BYTES = 262_144

T = TypeVar("T")


def physical_name(prefix: str, name: str, fifo: bool) -> str:
    """`prefix + name`, with `.fifo` for FIFO topics and queues."""
    base = name[: -len(FIFO_SUFFIX)] if name.endswith(FIFO_SUFFIX) else name
    return f"{prefix}{base}{FIFO_SUFFIX if fifo or name.endswith(FIFO_SUFFIX) else ''}"


def string_attributes(attributes: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}


def plain_attributes(attributes: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """Message attributes as name -> string (String and Number values; Binary ones are skipped)."""
    out: dict[str, str] = {}
    for name, attr in (attributes or {}).items():
        value = attr.get("StringValue")
        if isinstance(value, str):
            out[name] = value
    return out


def entry(message: OutgoingMessage, *, fifo: bool, body_key: str, entry_id: str | None = None) -> dict[str, Any]:
    """One Publish/SendMessage(Batch) entry: group and dedup ids only for FIFO destinations,
    per-message delay only for standard queues (FIFO refuses it). With `entry_id`, a batch entry
    (its `Id` first)."""
    out: dict[str, Any] = {body_key: message.body} if entry_id is None else {"Id": entry_id, body_key: message.body}
    if message.attributes:
        out["MessageAttributes"] = string_attributes(message.attributes)
    if fifo:
        out["MessageGroupId"] = message.group_id or "default"
        if message.deduplication_id:
            out["MessageDeduplicationId"] = message.deduplication_id
    elif message.delay_seconds and body_key == "MessageBody":
        out["DelaySeconds"] = message.delay_seconds
    return out


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII (a flag of the string, O(1))."""
    return len(text) if text.isascii() else len(text.encode())


def payload_size(body: str, attributes: Mapping[str, str]) -> int:
    """What a message counts against a batch's bytes: its body, and each attribute's name and value
    and 6 for its type, in UTF-8. The names and the values are measured joined (UTF-8 lengths add up),
    two C calls instead of two Python calls per attribute."""
    if not attributes:
        return utf8_size(body)
    return _size(body, "".join(attributes), "".join(attributes.values()), len(attributes))


def _size(body: str, names: str, values: str, count: int) -> int:
    """`payload_size` of a body and `count` attributes whose names and values are given joined."""
    return utf8_size(body) + utf8_size(names) + utf8_size(values) + 6 * count


def batches(entries: Sequence[dict[str, Any]], body_key: str, max_bytes: int) -> list[Sequence[dict[str, Any]]]:
    """Entries cut into batches of at most 10 and `max_bytes` of bodies and attributes."""
    return cut(entries, [_entry_size(item, body_key) for item in entries], max_bytes)


def _entry_size(item: Mapping[str, Any], body_key: str) -> int:
    """`payload_size` of an entry, whose attributes are SQS-shaped."""
    attributes = item.get("MessageAttributes")
    if not attributes:
        return utf8_size(item[body_key])
    values = "".join([attr["StringValue"] for attr in attributes.values()])
    return _size(item[body_key], "".join(attributes), values, len(attributes))


def message_batches(messages: Sequence[OutgoingMessage], max_bytes: int) -> list[Sequence[OutgoingMessage]]:
    """Messages cut as `batches` cuts their entries, measured before any entry is built."""
    return cut(messages, [payload_size(m.body, m.attributes) for m in messages], max_bytes)


def cut(items: Sequence[T], sizes: Sequence[int], max_bytes: int) -> list[Sequence[T]]:
    """`items` in order, in runs of at most 10 whose `sizes` add up to at most `max_bytes` (an item
    larger than that alone)."""
    if len(items) <= MAX_BATCH and sum(sizes) <= max_bytes:
        return [items] if items else []  # the usual publish: one batch
    out: list[Sequence[T]] = []
    start = size = 0
    for end, item_size in enumerate(sizes):
        if end > start and (end - start == MAX_BATCH or size + item_size > max_bytes):
            out.append(items[start:end])
            start, size = end, 0
        size += item_size
    if start < len(items):
        out.append(items[start:])
    return out


def queue_policy(queue_arn: str, topic_arns: Sequence[str]) -> str:
    """The queue policy that lets SNS deliver from the topology's topics (required on AWS)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "scte-bus-sns",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(topic_arns)}},
                }
            ],
        },
        sort_keys=True,
    )


def _same(name: str, current: str | None, desired: str) -> bool:
    if current is None:
        return False
    if name in ("RedrivePolicy", "Policy", "FilterPolicy"):
        try:
            return bool(_normal(json.loads(current)) == _normal(json.loads(desired)))
        except ValueError:
            return False
    return current == desired


def _normal(value: Any) -> Any:
    """JSON compared loosely: brokers echo numbers as strings and lists in their own order."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        return items[0] if len(items) == 1 and not isinstance(items[0], dict | list) else sorted(items, key=repr)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class BrokerOps(Protocol):
    """The calls provisioning needs, with physical names and ARNs."""

    async def create_topic(self, name: str, attributes: Mapping[str, str]) -> str: ...

    async def create_queue(self, name: str, attributes: Mapping[str, str]) -> None: ...

    async def queue_arn(self, name: str) -> str: ...

    async def get_queue_attributes(self, name: str) -> dict[str, str]: ...

    async def set_queue_attributes(self, name: str, attributes: Mapping[str, str]) -> None: ...

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]: ...

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]: ...

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None: ...

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str: ...

    async def unsubscribe(self, subscription_arn: str) -> None: ...


async def _create_queue(ops: BrokerOps, name: str, fifo: bool) -> str:
    """Create the queue with only what can never change (idempotent); its ARN."""
    await ops.create_queue(name, {"FifoQueue": "true"} if fifo else {})
    return await ops.queue_arn(name)


async def _update_queue(ops: BrokerOps, name: str, desired: Mapping[str, str]) -> None:
    """Bring a queue's changeable attributes in line, touching only those that differ."""
    current = await ops.get_queue_attributes(name)
    changed = {k: v for k, v in desired.items() if not _same(k, current.get(k), v)}
    if changed:
        log.info("queue %s: setting %s", name, ", ".join(sorted(changed)))
        await ops.set_queue_attributes(name, changed)


def _queue_attributes(spec: QueueSpec) -> dict[str, str]:
    return {"VisibilityTimeout": str(spec.visibility_timeout), "MessageRetentionPeriod": str(spec.retention_seconds)}


async def provision(ops: BrokerOps, topology: Topology, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """Create or update the topology; returns (topic name -> ARN, queue name -> physical name)."""
    topic_arns: dict[str, str] = {}
    for topic in topology.topics:
        attributes = {"FifoTopic": "true"} if topic.fifo else {}
        topic_arns[topic.name] = await ops.create_topic(physical_name(prefix, topic.name, topic.fifo), attributes)

    queue_names: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    for queue in topology.queues:
        dlq = physical_name(prefix, queue.dead_letter_queue, queue.fifo)
        main = physical_name(prefix, queue.name, queue.fifo)
        dlq_arn = await _create_queue(ops, dlq, queue.fifo)
        await _update_queue(ops, dlq, {"MessageRetentionPeriod": "1209600"})
        arn = await _create_queue(ops, main, queue.fifo)
        desired = _queue_attributes(queue)
        desired["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.broker_max_receive_count}
        )
        if queue.subscriptions:
            desired["Policy"] = queue_policy(arn, [topic_arns[s.topic] for s in queue.subscriptions])
        await _update_queue(ops, main, desired)
        queue_names[queue.name] = main
        queue_names[queue.dead_letter_queue] = dlq
        queue_arns[queue.name] = arn

    # Subscriptions: declared ones created or updated; ones from a topology topic to a topology queue
    # that the topology no longer declares are removed (the code is the single source of truth).
    own_queue_arns = {arn: name for name, arn in queue_arns.items()}
    for topic in topology.topics:
        topic_arn = topic_arns[topic.name]
        wanted = {
            queue_arns[q.name]: next(s for s in q.subscriptions if s.topic == topic.name)
            for q in topology.subscribers(topic.name)
        }
        existing: dict[str, list[str]] = {}
        for sub in await ops.list_subscriptions(topic_arn):
            if sub.get("Protocol") == "sqs" and sub.get("Endpoint") in own_queue_arns:
                existing.setdefault(sub["Endpoint"], []).append(sub["SubscriptionArn"])
        for queue_arn, subscription in wanted.items():
            policy = subscription.effective_filter_policy()
            desired = {"RawMessageDelivery": "true"}
            if policy is not None:
                desired["FilterPolicy"] = json.dumps(policy, sort_keys=True)
                desired["FilterPolicyScope"] = "MessageAttributes"
            arns = existing.pop(queue_arn, [])
            if not arns:
                log.info("subscribing %s to %s", own_queue_arns[queue_arn], topic.name)
                await ops.subscribe(topic_arn, queue_arn, desired)
                continue
            for extra in arns[1:]:
                await ops.unsubscribe(extra)
            current = await ops.get_subscription_attributes(arns[0])
            for name, value in desired.items():
                if not _same(name, current.get(name), value):
                    await ops.set_subscription_attribute(arns[0], name, value)
            if policy is None and current.get("FilterPolicy"):
                await ops.set_subscription_attribute(arns[0], "FilterPolicy", "")
        for queue_arn, arns in existing.items():
            for stale in arns:
                log.info("unsubscribing %s from %s (not in the topology)", own_queue_arns[queue_arn], topic.name)
                await ops.unsubscribe(stale)
    return topic_arns, queue_names
