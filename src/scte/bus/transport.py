"""The transport port: what the bus needs of a broker, and nothing more.

Two adapters implement it: `InProcessTransport` (the `scte.queue` engine in this process, no HTTP)
and `AwsTransport` (aiobotocore SQS and SNS: real AWS, `scte queue serve`, or any other SQS/SNS
endpoint via `AWS_ENDPOINT_URL`). One contract test suite runs against both.

Names given to a transport are logical (`certification-events`, `notifications`); the transport
maps them to physical queue and topic names with its `prefix` (e.g. `scte-dev-`), and a `.fifo`
suffix where the topology says FIFO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scte.bus.topology import Topology


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to publish to a topic or send to a queue.

    `attributes` become SQS/SNS String message attributes (at most 10: the envelope's budget).
    `group_id` and `deduplication_id` apply to FIFO topics and queues; `delay_seconds` (0..900) to
    standard queues only.
    """

    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    group_id: str | None = None
    deduplication_id: str | None = None
    delay_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message received from a queue, with what the consumer runtime needs to act on it."""

    queue: str  # the logical queue name it was received from
    message_id: str
    receipt: str
    body: str
    attributes: Mapping[str, str]  # message attributes (String values)
    receive_count: int  # ApproximateReceiveCount, 1 on the first delivery
    sent_timestamp_ms: int
    group_id: str | None = None


class Transport(Protocol):
    """A broker as the bus sees it. Every method may raise `TransportError` (broker unreachable)."""

    async def provision(self, topology: Topology) -> None:
        """Create or update every topic, queue, dead-letter queue and subscription; idempotent."""
        ...

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Publish to a topic (fan-out to its subscribed queues); all or none per message."""
        ...

    async def send(self, queue: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send straight to a queue (commands, scheduled deliveries, dead letters)."""
        ...

    async def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> list[IncomingMessage]:
        """Long-poll a queue; returns as soon as messages are available, or [] after `wait_seconds`."""
        ...

    async def delete(self, queue: str, receipts: Sequence[str]) -> None:
        """Acknowledge: delete these messages (batched where the broker allows)."""
        ...

    async def change_visibility(self, queue: str, receipt: str, seconds: int) -> None:
        """Hide a received message for `seconds` more (heartbeat, retry backoff); 0 releases it."""
        ...

    async def close(self) -> None: ...


class TransportError(Exception):
    """The broker could not be reached or refused the call; the caller may retry later.

    `code` is the broker's error code when it answered (`QueueDoesNotExist`, `ReceiptHandleIsInvalid`,
    ...), None when it could not be reached.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
