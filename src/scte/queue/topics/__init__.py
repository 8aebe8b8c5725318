"""Topics: SNS semantics on the broker's engine, durable in the same SQLite file.

`Topics(engine)` (reachable as `engine.topics`) is the async, in-process API the SNS wire layer
serves: topics, subscriptions, publish and fan-out. Arguments and results use the SNS query
protocol's member names (`TopicArn`, `SubscriptionArn`, `MessageId`, ...); errors are `SnsError`
with SNS's codes (InvalidParameter, NotFound, AuthorizationError, ...) and messages.

Fan-out is transactional: a publish is accepted, filtered through every confirmed subscription's
filter policy, and written to every matching queue of this region in one store transaction, all or
none; queues then wake their long polls. HTTP/HTTPS notifications, and deliveries to queues of other
regions (other engines: `region_resolver`), go to outbox tables in that same transaction and
background deliverers send them (with retries, and the subscription's dead-letter queue when they are
given up), so a crash never loses an accepted notification; those are at least once, not atomic with
the publish. Other protocols (email, sms, lambda, application, firehose) can be subscribed but are not
delivered: this broker has no such transports, and their notifications are counted as undeliverable.

The modules:
- `catalog`: topics, subscriptions, permissions, tags (the API methods); `records`: their rows;
  `attributes`: validation of what they store.
- `publish`: Publish, PublishBatch, the fan-out; `messages`: validation of what a publish carries;
  `envelope`: what subscribers receive.
- `http_delivery`, `region_delivery`: the two outboxes and their deliverers; `outbox`: the worker loop.
- `base`: what the parts share; `errors`, `limits`.
"""

from __future__ import annotations

from scte.queue.filter_policy import SCOPES, FilterPolicy, invalid, parse_policy
from scte.queue.topics.attributes import DEFAULT_EFFECTIVE_DELIVERY_POLICY
from scte.queue.topics.base import RegionResolver
from scte.queue.topics.catalog import Catalog
from scte.queue.topics.errors import SnsError, not_found
from scte.queue.topics.http_delivery import HttpDelivery
from scte.queue.topics.limits import (
    DEDUP_WINDOW_MS,
    HTTP_TIMEOUT_S,
    MAX_BATCH_ENTRIES,
    MAX_MESSAGE_BYTES,
    MAX_TAGS,
    PAGE_SIZE,
    PENDING,
    PENDING_LISTED,
)
from scte.queue.topics.publish import Publisher
from scte.queue.topics.region_delivery import RegionDelivery

__all__ = [
    "DEDUP_WINDOW_MS",
    "DEFAULT_EFFECTIVE_DELIVERY_POLICY",
    "HTTP_TIMEOUT_S",
    "MAX_BATCH_ENTRIES",
    "MAX_MESSAGE_BYTES",
    "MAX_TAGS",
    "PAGE_SIZE",
    "PENDING",
    "PENDING_LISTED",
    "SCOPES",
    "FilterPolicy",
    "RegionResolver",
    "SnsError",
    "Topics",
    "invalid",
    "not_found",
    "parse_policy",
]


class Topics(Catalog, Publisher, HttpDelivery, RegionDelivery):
    """SNS topics and subscriptions over an `Engine`; see the module docstring."""

    async def start(self) -> None:
        """Resume the deliveries (HTTP, other regions) left in the outboxes by a previous run."""
        http, regions = await self._run(
            lambda c: (
                c.execute("SELECT 1 FROM sns_deliveries LIMIT 1").fetchone(),
                c.execute("SELECT 1 FROM sns_region_deliveries LIMIT 1").fetchone(),
            )
        )
        if http:
            self._http_worker.kick()
        if regions:
            self._region_worker.kick()

    async def close(self) -> None:
        await self._http_worker.close()
        await self._region_worker.close()
