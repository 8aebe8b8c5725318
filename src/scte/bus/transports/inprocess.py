"""The in-process transport: the `scte.queue` engine in this process, no HTTP.

Used by tests and the single-process mode. It behaves as SQS/SNS do because it is the same engine
`scte queue serve` serves; only the wire is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from scte.bus.transport import IncomingMessage, OutgoingMessage, TransportError
from scte.bus.transports._provision import (
    MAX_SNS_BATCH_BYTES,
    RECEIVE_SYSTEM_ATTRIBUTES,
    entry,
    message_batches,
    physical_name,
    plain_attributes,
    provision,
)
from scte.queue.errors import SqsError

if TYPE_CHECKING:
    from scte.bus.topology import Topology
    from scte.queue.engine import Engine

__all__ = ["InProcessTransport"]

T = TypeVar("T")


class _EngineOps:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def create_topic(self, name: str, attributes: Mapping[str, str]) -> str:
        return await self.engine.topics.create_topic(name, attributes)

    async def create_queue(self, name: str, attributes: Mapping[str, str]) -> None:
        if not self.engine.queue_exists(name):
            await self.engine.create_queue(name, attributes)

    async def queue_arn(self, name: str) -> str:
        return self.engine.queue_arn(name)

    async def get_queue_attributes(self, name: str) -> dict[str, str]:
        return await self.engine.get_queue_attributes(name)

    async def set_queue_attributes(self, name: str, attributes: Mapping[str, str]) -> None:
        await self.engine.set_queue_attributes(name, attributes)

    async def list_subscriptions(self, topic_arn: str) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        token: str | None = None
        while True:
            page, token = await self.engine.topics.list_subscriptions_by_topic(topic_arn, token)
            out.extend(page)
            if not token:
                return out

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        return await self.engine.topics.get_subscription_attributes(subscription_arn)

    async def set_subscription_attribute(self, subscription_arn: str, name: str, value: str) -> None:
        await self.engine.topics.set_subscription_attributes(subscription_arn, name, value)

    async def subscribe(self, topic_arn: str, queue_arn: str, attributes: Mapping[str, str]) -> str:
        return await self.engine.topics.subscribe(topic_arn, "sqs", queue_arn, attributes)

    async def unsubscribe(self, subscription_arn: str) -> None:
        await self.engine.topics.unsubscribe(subscription_arn)


class InProcessTransport:
    """`Transport` on an `Engine` (started by the caller, who also closes it)."""

    def __init__(self, engine: Engine, prefix: str = "", *, topology: Topology | None = None) -> None:
        self.engine = engine
        self.prefix = prefix
        self._ops = _EngineOps(engine)
        self._topics: dict[str, tuple[str, bool]] = {}  # logical -> (ARN, fifo)
        self._queues: dict[str, tuple[str, bool]] = {}  # logical -> (physical, fifo)
        if topology is not None:
            self._learn(topology)

    def _learn(self, topology: Topology) -> None:
        for topic in topology.topics:
            name = physical_name(self.prefix, topic.name, topic.fifo)
            self._topics[topic.name] = (self.engine.topics.topic_arn(name), topic.fifo)
        for queue in topology.queues:
            for logical in (queue.name, queue.dead_letter_queue):
                self._queues[logical] = (physical_name(self.prefix, logical, queue.fifo), queue.fifo)

    async def _call(self, what: Callable[[], Awaitable[T]]) -> T:
        if self.engine.closing:
            raise TransportError("the broker engine is closed")
        try:
            return await what()
        except SqsError as exc:
            raise TransportError(exc.message, code=exc.code) from exc

    def _queue(self, name: str) -> tuple[str, bool]:
        known = self._queues.get(name)
        if known is not None:
            return known
        for fifo in (False, True):
            physical = physical_name(self.prefix, name, fifo)
            if self.engine.queue_exists(physical):
                self._queues[name] = (physical, self.engine.is_fifo(physical))
                return self._queues[name]
        raise TransportError(f"queue {name!r} does not exist", code="QueueDoesNotExist")

    async def _topic(self, name: str) -> tuple[str, bool]:
        known = self._topics.get(name)
        if known is not None:
            return known
        for fifo in (False, True):
            arn = self.engine.topics.topic_arn(physical_name(self.prefix, name, fifo))
            try:
                await self.engine.topics.get_topic_attributes(arn)
            except SqsError:
                continue
            self._topics[name] = (arn, fifo)
            return self._topics[name]
        raise TransportError(f"topic {name!r} does not exist", code="NotFound")

    # -- Transport ---------------------------------------------------------------------------------------

    async def provision(self, topology: Topology) -> None:
        await self._call(lambda: provision(self._ops, topology, self.prefix))
        self._learn(topology)

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        arn, fifo = await self._topic(topic)
        if len(messages) == 1:
            item = entry(messages[0], fifo=fifo, body_key="Message")
            await self._call(
                lambda: self.engine.topics.publish(
                    arn,
                    item["Message"],
                    message_attributes=item.get("MessageAttributes"),
                    message_group_id=item.get("MessageGroupId"),
                    message_deduplication_id=item.get("MessageDeduplicationId"),
                )
            )
            return
        # Cut by the messages' sizes first, then build each batch's entries (nothing measured twice).
        for batch in message_batches(messages, MAX_SNS_BATCH_BYTES):
            entries = [entry(m, fifo=fifo, body_key="Message", entry_id=str(i)) for i, m in enumerate(batch)]
            result = await self._call(lambda e=entries: self.engine.topics.publish_batch(arn, e))  # type: ignore[misc]
            _raise_failed(result, "publish")

    async def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        name, fifo = self._queue(queue)
        for batch in message_batches(messages, 1_048_576):
            entries = [entry(m, fifo=fifo, body_key="MessageBody", entry_id=str(i)) for i, m in enumerate(batch)]
            result = await self._call(lambda e=entries: self.engine.send_message_batch(name, e))  # type: ignore[misc]
            _raise_failed(result, "send")

    async def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> list[IncomingMessage]:
        name, _fifo = self._queue(queue)
        raw = await self._call(
            lambda: self.engine.receive_message(
                name,
                max_number=max_messages,
                wait_time_seconds=wait_seconds,
                visibility_timeout=visibility_timeout,
                message_system_attribute_names=RECEIVE_SYSTEM_ATTRIBUTES,
                message_attribute_names=("All",),
            )
        )
        return [incoming(queue, m) for m in raw]

    async def delete(self, queue: str, receipts: Sequence[str]) -> None:
        if not receipts:
            return
        name, _fifo = self._queue(queue)
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            result = await self._call(lambda e=entries: self.engine.delete_message_batch(name, e))  # type: ignore[misc]
            _raise_failed(result, "delete")

    async def change_visibility(self, queue: str, receipt: str, seconds: int) -> None:
        name, _fifo = self._queue(queue)
        await self._call(lambda: self.engine.change_message_visibility(name, receipt, seconds))

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""
        await asyncio.sleep(0)


def incoming(queue: str, message: Mapping[str, Any]) -> IncomingMessage:
    """An SQS ReceiveMessage result entry as an `IncomingMessage`."""
    system = message.get("Attributes") or {}
    # Positional, in the order of the fields: a dataclass's __init__ matches keywords at 0.3 us a message.
    return IncomingMessage(
        queue,
        str(message["MessageId"]),  # message_id
        str(message["ReceiptHandle"]),  # receipt
        str(message["Body"]),  # body
        plain_attributes(message.get("MessageAttributes")),  # attributes
        int(system.get("ApproximateReceiveCount", 1)),  # receive_count
        int(system.get("SentTimestamp", 0)),  # sent_timestamp_ms
        system.get("MessageGroupId") or None,  # group_id
    )


def _raise_failed(result: Mapping[str, Any], action: str) -> None:
    failed = result.get("Failed") or []
    if failed:
        first = failed[0]
        raise TransportError(
            f"{action}: {len(failed)} entr{'y' if len(failed) == 1 else 'ies'} failed, first: "
            f"{first.get('Code')}: {first.get('Message')}",
            code=str(first.get("Code")),
        )
