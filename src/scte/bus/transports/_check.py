"""Production mode: check that a deployed topology is there, without creating anything.

Outside the embedded broker the topology is deployed beforehand (CloudFormation, or `scte up --provision`
against a development broker), and a service's identity may read it but not make it. `missing(ops, ...)`
lists, in words an operator can act on, what a topology lacks: each queue and dead-letter queue, the
redrive policy between them, each topic, each subscription of a queue to a topic.

The calls, and so the permissions a service's role needs for its check (all read-only):
`sqs:GetQueueUrl` and `sqs:GetQueueAttributes` on its queue and dead-letter queue, `sns:GetTopicAttributes`
on its own topic and on the topics its queue subscribes to, `sns:ListSubscriptionsByTopic` on the latter.
Topic ARNs are built from the account and region of a queue's ARN (no `sns:ListTopics`); only a check of
topics alone (no queue) lists the account's topics.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from scte.bus.topology import Topology
from scte.bus.transports._provision import physical_name

__all__ = ["CheckOps", "TopologyCheck", "TopologyMissing", "missing"]


class CheckOps(Protocol):
    """The read-only calls the check makes; a missing resource is None / False, any other failure raises."""

    async def queue_arn_and_redrive(self, name: str) -> tuple[str, str | None] | None: ...

    async def topic_exists(self, arn: str) -> bool: ...

    async def find_topic(self, name: str) -> str | None: ...

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]: ...


class TopologyMissing(Exception):
    """What a deployed topology lacks (`missing`), for the one who runs the service to act on."""

    def __init__(self, who: str, where: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"{who + ': ' if who else ''}the topology is not deployed on {where}; missing: {'; '.join(missing)}. "
            "Services do not create queues, topics or subscriptions outside the embedded broker: deploy them "
            "first (`scte deploy cloudformation`), or against a development broker run `scte up --provision`."
        )


@dataclass
class TopologyCheck:
    """The result: what is missing, and the ARNs and URLs found on the way (the transport keeps them)."""

    missing: list[str] = field(default_factory=list)
    topic_arns: dict[str, str] = field(default_factory=dict)  # logical topic name -> ARN


async def missing(
    ops: CheckOps, topology: Topology, prefix: str = "", *, topics: Collection[str] | None = None
) -> TopologyCheck:
    """Check `topology`'s queues (with their dead-letter queues and redrive policies), the topics they
    subscribe to and those subscriptions, and `topics` (all of the topology's when None: a service passes
    the ones it publishes to)."""
    out = TopologyCheck()
    queue_arns: dict[str, str] = {}
    for queue in topology.queues:
        main = physical_name(prefix, queue.name, queue.fifo)
        dlq = physical_name(prefix, queue.dead_letter_queue, queue.fifo)
        found_dlq = await ops.queue_arn_and_redrive(dlq)
        found = await ops.queue_arn_and_redrive(main)
        if found_dlq is None:
            out.missing.append(f"dead-letter queue {dlq}")
        if found is None:
            out.missing.append(f"queue {main}")
            continue
        queue_arns[queue.name] = found[0]
        if found_dlq is not None and _redrive_target(found[1]) != found_dlq[0]:
            out.missing.append(f"redrive policy of queue {main} to {dlq}")

    wanted = [t for t in topology.topics if topics is None or t.name in topics]
    subscribed = {s.topic for q in topology.queues for s in q.subscriptions}
    wanted += [t for t in topology.topics if t.name in subscribed and t not in wanted]
    base = _arn_base(next(iter(queue_arns.values()), None))
    for topic in wanted:
        physical = physical_name(prefix, topic.name, topic.fifo)
        arn: str | None
        if base is not None:
            arn = f"{base}:{physical}"
            arn = arn if await ops.topic_exists(arn) else None
        else:
            arn = await ops.find_topic(physical)
        if arn is None:
            out.missing.append(f"topic {physical}")
        else:
            out.topic_arns[topic.name] = arn

    listed: dict[str, set[str]] = {}
    for queue in topology.queues:
        queue_arn = queue_arns.get(queue.name)
        for subscription in queue.subscriptions:
            topic_arn = out.topic_arns.get(subscription.topic)
            if queue_arn is None or topic_arn is None:
                continue  # already reported missing
            if topic_arn not in listed:
                listed[topic_arn] = {
                    s.get("Endpoint", "") for s in await ops.list_subscriptions(topic_arn) if s.get("Protocol") == "sqs"
                }
            if queue_arn not in listed[topic_arn]:
                out.missing.append(
                    f"subscription of queue {physical_name(prefix, queue.name, queue.fifo)} to topic "
                    f"{topic_arn.rsplit(':', 1)[-1]}"
                )
    return out


def _redrive_target(policy: str | None) -> str | None:
    if not policy:
        return None
    try:
        target = json.loads(policy).get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        return None
    return str(target) if target else None


def _arn_base(queue_arn: str | None) -> str | None:
    """`arn:<partition>:sns:<region>:<account>` from a queue's ARN (`arn:<partition>:sqs:<region>:<account>:name`)."""
    if queue_arn is None:
        return None
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return f"arn:{parts[1]}:sns:{parts[3]}:{parts[4]}"
