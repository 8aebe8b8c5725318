"""The access policies of the platform's topics and queues, derived from the topology.

Only the owning service publishes to its topic; only the subscribing service reads (and deletes from) its
queue and its dead-letter queue; SNS delivers to a queue only from the topics it subscribes to
(`aws:SourceArn`). Everything else is the account owner's (`scte up`'s admin key, on AWS the deployment's
role). The documents are plain AWS policy documents: `scte up` sets them on the embedded broker, and the
same documents are what an AWS deployment attaches to its SNS topics and SQS queues.

Each service is an IAM principal `arn:aws:iam::<account>:role/scte-<service>`: on the embedded broker the
principal of its access key (`broker_keys`), on AWS the role its tasks run as.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scte.bus.topology import Topology
from scte.bus.transports._provision import physical_name
from scte.queue import policy as access

__all__ = [
    "CONSUMER_ACTIONS",
    "PUBLISHER_ACTIONS",
    "AccessPolicies",
    "derive",
    "platform_policies",
    "principal_arn",
]

VERSION = "2012-10-17"
PUBLISHER_ACTIONS = ("sns:Publish", "sns:GetTopicAttributes")
CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    # a service's scheduled messages go to its own queue, its failures to its own dead-letter queue
    "sqs:SendMessage",
)

Document = dict[str, Any]


def principal_arn(account: str, service: str) -> str:
    """The IAM principal of a service."""
    return f"arn:aws:iam::{account}:role/scte-{service}"


@dataclass(frozen=True)
class AccessPolicies:
    """Policy documents by resource: topic ARN -> document, queue (physical name) -> document."""

    topics: dict[str, Document] = field(default_factory=dict)
    queues: dict[str, Document] = field(default_factory=dict)


def _topic_document(topic_arn: str, publisher: str) -> Document:
    return {
        "Version": VERSION,
        "Id": f"{topic_arn}/scte",
        "Statement": [
            {
                "Sid": "owner-publishes",
                "Effect": "Allow",
                "Principal": {"AWS": publisher},
                "Action": list(PUBLISHER_ACTIONS),
                "Resource": topic_arn,
            }
        ],
    }


def _queue_document(queue_arn: str, consumer: str, source_topics: list[str]) -> Document:
    statements: list[Document] = [
        {
            "Sid": "subscriber-consumes",
            "Effect": "Allow",
            "Principal": {"AWS": consumer},
            "Action": list(CONSUMER_ACTIONS),
            "Resource": queue_arn,
        }
    ]
    if source_topics:
        statements.append(
            {
                "Sid": "sns-delivers",
                "Effect": "Allow",
                "Principal": {"Service": access.SNS_SERVICE},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(source_topics)}},
            }
        )
    return {"Version": VERSION, "Id": f"{queue_arn}/scte", "Statement": statements}


def derive(
    topology: Topology,
    *,
    publishers: Mapping[str, str],
    consumers: Mapping[str, str],
    account: str,
    region: str,
    prefix: str = "",
) -> AccessPolicies:
    """The policies of `topology`'s topics and queues. `publishers`: topic -> the service that publishes to
    it (a topic without one gets a policy granting nobody: only the owner may publish); `consumers`: queue
    -> the service that consumes it. Every document is checked by the broker's own parser."""
    topic_arns = {
        t.name: f"arn:aws:sns:{region}:{account}:{physical_name(prefix, t.name, t.fifo)}" for t in topology.topics
    }
    out = AccessPolicies()
    for topic in topology.topics:
        publisher = publishers.get(topic.name)
        arn = topic_arns[topic.name]
        if publisher is None:
            out.topics[arn] = {"Version": VERSION, "Id": f"{arn}/scte", "Statement": [_owner_only(arn)]}
        else:
            out.topics[arn] = _topic_document(arn, principal_arn(account, publisher))
    for queue in topology.queues:
        consumer = consumers.get(queue.name)
        if consumer is None:
            raise ValueError(f"queue {queue.name!r} has no consuming service")
        sources = [topic_arns[s.topic] for s in queue.subscriptions]
        for name, subscribed in ((queue.name, sources), (queue.dead_letter_queue, [])):
            physical = physical_name(prefix, name, queue.fifo)
            arn = f"arn:aws:sqs:{region}:{account}:{physical}"
            out.queues[physical] = _queue_document(arn, principal_arn(account, consumer), subscribed)
    for document in (*out.topics.values(), *out.queues.values()):
        access.check_document(document)  # what is derived is what the broker (and AWS) accepts
    return out


def _owner_only(arn: str) -> Document:
    """A statement that grants nothing to anyone but restates who owns the topic (a policy needs one)."""
    return {
        "Sid": "owner-only",
        "Effect": "Deny",
        "NotPrincipal": {"AWS": arn.split(":")[4]},
        "Action": "sns:Publish",
        "Resource": arn,
    }


def platform_policies(services: list[str], *, account: str, region: str, prefix: str = "") -> AccessPolicies:
    """The platform's policies: each topic published by the service of the same name, each queue consumed by
    the service that declares it (`service.QUEUE`)."""
    from scte.platform import TOPICS, service_module, topology

    consumers: dict[str, str] = {}
    for name in services:
        module = service_module(name)
        queue = getattr(module, "QUEUE", None) if module is not None else None
        if queue is not None:
            consumers[queue.name] = name
    publishers = {t.name: t.name for t in TOPICS if t.name in services}
    return derive(
        topology(services), publishers=publishers, consumers=consumers, account=account, region=region, prefix=prefix
    )


async def apply_policies(
    policies: AccessPolicies, *, endpoint_url: str | None, region: str, access_key: tuple[str, str]
) -> None:
    """Set each document as its topic's or queue's `Policy` (SetTopicAttributes, SetQueueAttributes), with
    the owner's key. Idempotent: a document already in place is not written again."""
    from aiobotocore.session import get_session

    session = get_session()
    kwargs: dict[str, Any] = {
        "region_name": region,
        "endpoint_url": endpoint_url,
        "aws_access_key_id": access_key[0],
        "aws_secret_access_key": access_key[1],
    }
    async with session.create_client("sns", **kwargs) as sns, session.create_client("sqs", **kwargs) as sqs:
        for arn, document in policies.topics.items():
            current = (await sns.get_topic_attributes(TopicArn=arn))["Attributes"].get("Policy")
            if current is None or json.loads(current) != document:
                await sns.set_topic_attributes(
                    TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(document)
                )
        for name, document in policies.queues.items():
            url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
            attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])).get("Attributes")
            current = (attributes or {}).get("Policy")
            if current is None or json.loads(current) != document:
                await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(document)})
