"""The console's way to the broker: its SQS and SNS APIs with the owner's (admin) key, and its `/metrics`.

The gateway holds the path of the admin key file that `scte up` wrote (`<data>/keys/broker/admin.json`,
0600) and signs each call with it (SigV4, as any AWS client): the console reads queues, topics and
subscriptions, looks at a dead-letter queue's messages, moves them back and purges, all through the
broker's public API. Nothing reads the broker's database. The key is read from the file, never logged
nor shown. The age of each queue's oldest message comes from the broker's Prometheus gauges (`/metrics`,
unauthenticated on loopback), which the broker keeps without counting rows.

Looking at a dead-letter queue receives its messages with a visibility timeout of 0: they stay where
they are, visible to the next look (a DLQ has no consumer whose receive count this would disturb).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from scte.bus.consumer import DEAD_LETTER_ATTRIBUTE

__all__ = [
    "BrokerAdmin",
    "BrokerMetrics",
    "BrokerUnavailable",
    "DeadLetter",
    "QueueNotFound",
    "QueueRow",
    "SubscriptionRow",
    "TopicRow",
]

log = logging.getLogger(__name__)

DLQ_SUFFIX = "-dlq"
STATIC_SECONDS = 30.0
"""How long a queue's DLQ and FIFO flag, and the topics with their subscriptions, are taken as known."""
PEEK_ROUNDS = 8
"""ReceiveMessage calls (10 messages each) when looking at or redriving a dead-letter queue's messages."""
_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "QueueArn",
    "RedrivePolicy",
    "FifoQueue",
)


class BrokerUnavailable(Exception):
    """The broker did not answer, refused the admin key, or the install has no admin key."""


class QueueNotFound(Exception):
    """No such queue on the broker."""


def is_dead_letter_queue(name: str) -> bool:
    return name.removesuffix(".fifo").endswith(DLQ_SUFFIX)


def source_of(dlq: str) -> str:
    """`members-dlq.fifo` -> `members.fifo`: the queue whose failures a DLQ holds (`scte.bus.topology`)."""
    fifo = dlq.endswith(".fifo")
    return dlq.removesuffix(".fifo").removesuffix(DLQ_SUFFIX) + (".fifo" if fifo else "")


@dataclass(frozen=True)
class QueueRow:
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age: float | None
    """Seconds; None when the broker's gauges do not say."""
    dead_letter_queue: str | None
    fifo: bool
    sent: int | None = None
    received: int | None = None
    deleted: int | None = None

    @property
    def is_dlq(self) -> bool:
        return is_dead_letter_queue(self.name)


@dataclass(frozen=True)
class SubscriptionRow:
    topic: str
    protocol: str
    endpoint: str
    """The subscribed queue's name for SQS (the ARN's last part), else the endpoint as given."""


@dataclass(frozen=True)
class TopicRow:
    name: str
    subscriptions: tuple[SubscriptionRow, ...]
    published: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message of a dead-letter queue with its envelope decoded (every field as the message says)."""

    message_id: str
    body: str
    attributes: dict[str, str]
    failure: dict[str, Any]
    group_id: str | None = None

    @property
    def event_type(self) -> str:
        return self.attributes.get("ce-type", "")

    @property
    def source(self) -> str:
        return self.attributes.get("ce-source", "")

    @property
    def subject(self) -> str:
        return self.attributes.get("ce-subject", "")

    @property
    def correlation_id(self) -> str:
        return self.attributes.get("correlation-id", "")

    @property
    def event_time(self) -> str:
        return self.attributes.get("ce-time", "")

    @property
    def attempts(self) -> str:
        count = self.failure.get("receive_count")
        return str(count) if count is not None else ""

    def restored_attributes(self) -> dict[str, str]:
        """The attributes as the message had them before it was dead-lettered (the failure record removed,
        what it folded away to stay within 10 attributes put back)."""
        out = {k: v for k, v in self.attributes.items() if k != DEAD_LETTER_ATTRIBUTE}
        folded = self.failure.get("folded")
        if isinstance(folded, dict):
            out.update({str(k): str(v) for k, v in folded.items()})
        return out


@dataclass
class BrokerMetrics:
    """One scrape of the broker's `/metrics`: per queue its counters (since the broker started) and gauges,
    per topic its published count."""

    oldest: dict[str, float] = field(default_factory=dict)
    visible: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    delayed: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)


def _string_attributes(message: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        if isinstance(value, Mapping) and "StringValue" in value:
            out[str(name)] = str(value["StringValue"])
    return out


def _dead_letter(message: Mapping[str, Any]) -> DeadLetter:
    attributes = _string_attributes(message)
    failure: dict[str, Any] = {}
    raw = attributes.get(DEAD_LETTER_ATTRIBUTE)
    if raw:
        try:
            decoded = json.loads(raw)
            failure = decoded if isinstance(decoded, dict) else {"error": raw}
        except ValueError:
            failure = {"error": raw}
    system = message.get("Attributes") or {}
    return DeadLetter(
        message_id=str(message["MessageId"]),
        body=str(message.get("Body", "")),
        attributes=attributes,
        failure=failure,
        group_id=system.get("MessageGroupId"),
    )


class BrokerAdmin:
    """The broker's APIs, signed with the owner's key read from `key_file`."""

    def __init__(self, endpoint_url: str, key_file: Path, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.key_file = key_file
        self.region = region
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(base_url=self.endpoint_url, timeout=httpx.Timeout(10.0, connect=2.0))
        # What changes only when the topology does (a queue's DLQ and FIFO flag, the topics and their
        # subscriptions), kept STATIC_SECONDS: a console refresh then costs the broker one ListQueues and
        # one `/metrics` scrape, not two calls per queue (bench/console_cost.py).
        self._static_queues: dict[str, tuple[float, str | None, bool]] = {}
        self._static_topics: tuple[float, dict[str, list[SubscriptionRow]]] | None = None

    async def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._lock:
            if service not in self._clients:
                try:
                    key = json.loads(self.key_file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise BrokerUnavailable(f"no broker admin key ({type(exc).__name__})") from None
                self._clients[service] = await self._stack.enter_async_context(
                    get_session().create_client(
                        service,
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        aws_access_key_id=key["aws_access_key_id"],
                        aws_secret_access_key=key["aws_secret_access_key"],
                        config=AioConfig(connect_timeout=2, read_timeout=15, retries={"max_attempts": 2}),
                    )
                )
            return self._clients[service]

    async def _call(self, service: str, action: str, **params: Any) -> dict[str, Any]:
        client = await self._client(service)
        try:
            answer: dict[str, Any] = await getattr(client, action)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound"):
                raise QueueNotFound(str(params.get("QueueUrl") or params.get("QueueName") or "")) from None
            raise BrokerUnavailable(f"{action}: {code}") from None
        except BotoCoreError as exc:
            raise BrokerUnavailable(f"{action}: {type(exc).__name__}") from None
        return answer

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()
        await self._http.aclose()

    # -- reading -------------------------------------------------------------------------------------------

    async def metrics(self) -> BrokerMetrics:
        """The broker's figures as its `/metrics` gives them (empty when it does not answer)."""
        out = BrokerMetrics()
        try:
            response = await self._http.get("/metrics")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.info("broker metrics unavailable: %s", exc)
            return out
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = sample.labels
                if labels.get("region", self.region) != self.region:
                    continue
                queue, topic = labels.get("queue"), labels.get("topic")
                if queue and sample.name == "scte_queue_oldest_message_age_seconds":
                    out.oldest[queue] = float(sample.value)
                elif queue and sample.name == "scte_queue_messages_visible":
                    out.visible[queue] = int(sample.value)
                elif queue and sample.name == "scte_queue_messages_in_flight":
                    out.in_flight[queue] = int(sample.value)
                elif queue and sample.name == "scte_queue_messages_delayed":
                    out.delayed[queue] = int(sample.value)
                elif queue and sample.name == "scte_queue_messages_sent_total":
                    out.sent[queue] = int(sample.value)
                elif queue and sample.name == "scte_queue_messages_received_total":
                    out.received[queue] = int(sample.value)
                elif queue and sample.name == "scte_queue_messages_deleted_total":
                    out.deleted[queue] = int(sample.value)
                elif topic and sample.name == "scte_topic_messages_published_total":
                    out.published[topic] = int(sample.value)
        return out

    async def queue_names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"MaxResults": 1000}
            if token:
                params["NextToken"] = token
            answer = await self._call("sqs", "list_queues", **params)
            names.extend(url.rsplit("/", 1)[-1] for url in answer.get("QueueUrls") or ())
            token = answer.get("NextToken")
            if not token:
                return sorted(names)

    async def queue_url(self, name: str) -> str:
        """The URL of queue `name` (QueueNotFound when the broker has none)."""
        return str((await self._call("sqs", "get_queue_url", QueueName=name))["QueueUrl"])

    async def queues(self, metrics: BrokerMetrics | None = None) -> list[QueueRow]:
        """Every queue with its attributes; its counters and the oldest message's age from `metrics` (one
        scrape shared with `topics`), scraped here when not given."""
        if metrics is None:
            names, figures = await asyncio.gather(self.queue_names(), self.metrics())
        else:
            names, figures = await self.queue_names(), metrics

        now = time.monotonic()

        async def one(name: str) -> QueueRow | None:
            static = self._static_queues.get(name)
            if static is not None and static[0] > now and name in figures.visible:
                # the depth counts from the same gauges GetQueueAttributes answers from (no row counted)
                return QueueRow(
                    name=name,
                    visible=figures.visible[name],
                    in_flight=figures.in_flight.get(name, 0),
                    delayed=figures.delayed.get(name, 0),
                    oldest_age=figures.oldest.get(name),
                    dead_letter_queue=static[1],
                    fifo=static[2],
                    sent=figures.sent.get(name),
                    received=figures.received.get(name),
                    deleted=figures.deleted.get(name),
                )
            try:
                url = await self.queue_url(name)
                attrs = (
                    await self._call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=list(_ATTRIBUTES))
                )["Attributes"]
            except QueueNotFound:
                return None  # deleted meanwhile
            dlq = None
            if attrs.get("RedrivePolicy"):
                with contextlib.suppress(ValueError, TypeError):
                    dlq = str(json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"]).rsplit(":", 1)[-1]
            fifo = attrs.get("FifoQueue") == "true"
            self._static_queues[name] = (now + STATIC_SECONDS, dlq, fifo)
            return QueueRow(
                name=name,
                visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
                oldest_age=figures.oldest.get(name),
                dead_letter_queue=dlq,
                fifo=fifo,
                sent=figures.sent.get(name),
                received=figures.received.get(name),
                deleted=figures.deleted.get(name),
            )

        rows = await asyncio.gather(*(one(name) for name in names))
        return [row for row in rows if row is not None]

    async def _subscriptions(self) -> dict[str, list[SubscriptionRow]]:
        """Topic ARN -> its subscriptions (ListTopics, ListSubscriptions)."""
        arns: list[str] = []
        token: str | None = None
        while True:
            answer = await self._call("sns", "list_topics", **({"NextToken": token} if token else {}))
            arns.extend(str(t["TopicArn"]) for t in answer.get("Topics") or ())
            token = answer.get("NextToken")
            if not token:
                break
        subscriptions: dict[str, list[SubscriptionRow]] = {arn: [] for arn in arns}
        token = None
        while True:
            answer = await self._call("sns", "list_subscriptions", **({"NextToken": token} if token else {}))
            for item in answer.get("Subscriptions") or ():
                topic_arn = str(item.get("TopicArn", ""))
                endpoint = str(item.get("Endpoint", ""))
                protocol = str(item.get("Protocol", ""))
                if protocol == "sqs":
                    endpoint = endpoint.rsplit(":", 1)[-1]
                subscriptions.setdefault(topic_arn, []).append(
                    SubscriptionRow(topic_arn.rsplit(":", 1)[-1], protocol, endpoint)
                )
            token = answer.get("NextToken")
            if not token:
                break
        return subscriptions

    async def topics(self, metrics: BrokerMetrics | None = None) -> list[TopicRow]:
        static = self._static_topics
        if static is not None and static[0] > time.monotonic():
            subscriptions = static[1]
        else:
            subscriptions = await self._subscriptions()
            self._static_topics = (time.monotonic() + STATIC_SECONDS, subscriptions)
        if metrics is None:
            metrics = await self.metrics()
        rows = [
            TopicRow(
                arn.rsplit(":", 1)[-1],
                tuple(sorted(subs, key=lambda s: s.endpoint)),
                metrics.published.get(arn.rsplit(":", 1)[-1]),
            )
            for arn, subs in subscriptions.items()
        ]
        return sorted(rows, key=lambda t: t.name)

    async def _receive(self, url: str, visibility: int) -> list[dict[str, Any]]:
        answer = await self._call(
            "sqs",
            "receive_message",
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        return list(answer.get("Messages") or ())

    async def dead_letters(self, dlq: str, limit: int = 50) -> list[DeadLetter]:
        """Up to `limit` messages of `dlq`, left in place (received with visibility 0)."""
        url = await self.queue_url(dlq)
        seen: dict[str, DeadLetter] = {}
        for _ in range(PEEK_ROUNDS):
            batch = await self._receive(url, 0)
            fresh = [m for m in batch if m["MessageId"] not in seen]
            for message in fresh:
                seen[str(message["MessageId"])] = _dead_letter(message)
            if not fresh or len(seen) >= limit:
                break
        return list(seen.values())[:limit]

    # -- acting --------------------------------------------------------------------------------------------

    async def redrive(self, dlq: str, message_ids: Iterable[str]) -> int:
        """Move the named messages of `dlq` back to its source queue (attributes restored); how many moved.
        Each is sent, then deleted from the DLQ: a failure between the two leaves a copy in both, never none
        (the consumer's inbox drops the duplicate)."""
        wanted = set(message_ids)
        if not wanted:
            return 0
        url = await self.queue_url(dlq)
        source = source_of(dlq)
        source_url = await self.queue_url(source)
        moved = 0
        for _ in range(PEEK_ROUNDS):
            batch = await self._receive(url, 30)
            if not batch:
                break
            for message in batch:
                if str(message["MessageId"]) not in wanted:
                    await self._call(
                        "sqs",
                        "change_message_visibility",
                        QueueUrl=url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
                    continue
                letter = _dead_letter(message)
                params: dict[str, Any] = {
                    "QueueUrl": source_url,
                    "MessageBody": letter.body,
                    "MessageAttributes": {
                        k: {"DataType": "String", "StringValue": v} for k, v in letter.restored_attributes().items()
                    },
                }
                if source.endswith(".fifo"):
                    params["MessageGroupId"] = letter.group_id or "redriven"
                    params["MessageDeduplicationId"] = uuid.uuid4().hex
                await self._call("sqs", "send_message", **params)
                await self._call("sqs", "delete_message", QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                wanted.discard(letter.message_id)
                moved += 1
            if not wanted:
                break
        return moved

    async def peek(self, dlq: str, message_id: str) -> DeadLetter | None:
        """One message of `dlq`, left in place; None when it is not (or no longer) there."""
        for letter in await self.dead_letters(dlq, limit=PEEK_ROUNDS * 10):
            if letter.message_id == message_id:
                return letter
        return None

    async def topic_of(self, letter: DeadLetter) -> TopicRow | None:
        """The topic the event was published to: its source's (the topology names a topic for its service)."""
        for topic in await self.topics():
            if topic.name.removesuffix(".fifo") == letter.source:
                return topic
        return None

    async def replay(self, dlq: str, message_id: str) -> tuple[bool, str]:
        """Publish the event of one message of `dlq` again to its topic (attributes restored, the same event
        id), then delete it from the DLQ; (replayed, the topic's name). Every subscriber whose filter wants
        it gets it again; those that handled it already drop it (their inbox knows the event id), so a
        replay, or two, changes nothing twice. A failure between the publish and the delete leaves the
        dead letter in place, never loses it."""
        url = await self.queue_url(dlq)
        for _ in range(PEEK_ROUNDS):
            batch = await self._receive(url, 30)
            if not batch:
                break
            found = None
            for message in batch:
                if str(message["MessageId"]) == message_id and found is None:
                    found = message
                    continue
                await self._call(
                    "sqs",
                    "change_message_visibility",
                    QueueUrl=url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            if found is None:
                continue
            letter = _dead_letter(found)
            topic = await self.topic_of(letter)
            if topic is None:
                await self._call(
                    "sqs",
                    "change_message_visibility",
                    QueueUrl=url,
                    ReceiptHandle=found["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
                raise QueueNotFound(f"no topic for the source {letter.source!r}")
            arn = await self._topic_arn(topic.name)
            params: dict[str, Any] = {
                "TopicArn": arn,
                "Message": letter.body,
                "MessageAttributes": {
                    k: {"DataType": "String", "StringValue": v} for k, v in letter.restored_attributes().items()
                },
            }
            if topic.name.endswith(".fifo"):
                params["MessageGroupId"] = letter.group_id or letter.subject or "replayed"
                # a fresh deduplication id: the topic's 5-minute deduplication must not drop the replay (the
                # subscribers' inboxes, keyed by the event id, are what makes it harmless)
                params["MessageDeduplicationId"] = f"replay-{uuid.uuid4().hex}"
            await self._call("sns", "publish", **params)
            await self._call("sqs", "delete_message", QueueUrl=url, ReceiptHandle=found["ReceiptHandle"])
            return True, topic.name
        return False, ""

    async def _topic_arn(self, name: str) -> str:
        token: str | None = None
        while True:
            answer = await self._call("sns", "list_topics", **({"NextToken": token} if token else {}))
            for t in answer.get("Topics") or ():
                if str(t["TopicArn"]).rsplit(":", 1)[-1] == name:
                    return str(t["TopicArn"])
            token = answer.get("NextToken")
            if not token:
                raise QueueNotFound(name)

    async def redrive_all(self, dlq: str) -> str:
        """A message move task from `dlq` back to the queue whose RedrivePolicy names it; its handle."""
        url = await self.queue_url(dlq)
        arn = (await self._call("sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        answer = await self._call("sqs", "start_message_move_task", SourceArn=arn)
        return str(answer.get("TaskHandle", ""))

    async def purge(self, queue: str) -> None:
        await self._call("sqs", "purge_queue", QueueUrl=await self.queue_url(queue))
