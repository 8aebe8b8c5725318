"""`TopicsBase`: what every part of `Topics` shares: the engine, names and ARNs, the catalog lookups
inside a transaction, the counters, and the two outbox workers (HTTP, other regions)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from scte.queue.topics.envelope import Signer
from scte.queue.topics.errors import SnsError, invalid
from scte.queue.topics.outbox import Worker
from scte.queue.topics.records import Subscription, Topic, load_subscription, load_topic

if TYPE_CHECKING:
    from scte.queue.engine import Engine

#: region -> that region's engine (opened on demand), for deliveries to queues of other regions. Raises
#: `LookupError` for a region that will never be served (the delivery is given up); returns None or
#: raises anything else while the region is unavailable for now (the delivery is retried).
RegionResolver = Callable[[str], Awaitable["Engine | None"]]


class TopicsBase:
    def __init__(self, engine: Engine, *, auto_confirm: bool = False, base_url: str = "http://127.0.0.1:9324") -> None:
        self._engine = engine
        #: Confirm http/https/email subscriptions at once, without the handshake (test mode).
        self.auto_confirm = auto_confirm
        #: Where SubscribeURL / UnsubscribeURL / SigningCertURL in notifications point (the wire server).
        self.base_url = base_url
        #: How to reach other regions' engines (the wire server sets it); None: this engine alone, and
        #: subscriptions of queues in other regions are undeliverable.
        self.region_resolver: RegionResolver | None = None
        self._counters: dict[str, Counter[str]] = {}
        self._queue_sent: Counter[str] = Counter()
        self._signer = Signer()
        self._http_worker = Worker("sns http deliveries", self._http_round, engine.clock)
        self._region_lock = asyncio.Lock()  # one cross-region round at a time: rows go in order
        self._region_worker = Worker("sns cross-region deliveries", self._region_round, engine.clock)
        #: Check SNS's deliveries to this region's queues against the queues' policies (`--auth strict`):
        #: a queue whose policy does not let `sns.amazonaws.com` SendMessage with the topic as
        #: `aws:SourceArn` gets nothing (the delivery counts as undeliverable).
        self.enforce_queue_policies = False
        self._policies: dict[str, str | None] = {}  # topic ARN -> its Policy (None: no such topic)
        self._policy_generation = 0

    # -- implemented by the delivery parts -----------------------------------------------------------------

    async def _http_round(self) -> float | None:
        raise NotImplementedError

    async def _region_round(self) -> float | None:
        raise NotImplementedError

    async def _deliver_to_regions_now(self) -> None:
        raise NotImplementedError

    # -- plumbing ------------------------------------------------------------------------------------------

    async def _run(self, work: Any) -> Any:
        return await self._engine._store.run(work)

    def _now_ms(self) -> int:
        return int(self._engine.clock.now() * 1000)

    @property
    def _account(self) -> str:
        return self._engine.config.account_id

    @property
    def _region(self) -> str:
        return self._engine.config.region

    def topic_arn(self, name: str) -> str:
        return f"arn:aws:sns:{self._region}:{self._account}:{name}"

    def _check_arn(self, arn: object, parameter: str = "TopicArn", action: str = "GetTopicAttributes") -> str:
        if not arn or not isinstance(arn, str):
            raise invalid(f"Invalid parameter: {parameter}")
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "sns":
            raise invalid(f"Invalid parameter: {parameter}")
        if parts[4] != self._account:
            raise SnsError(
                "AuthorizationError",
                f"User: arn:aws:iam::{self._account}:root is not authorized to perform: "
                f"SNS:{action} on resource: {arn}",
                status=403,
            )
        return arn

    async def topic_policy(self, arn: str) -> str | None:
        """The topic's `Policy` attribute, None when there is no such topic. Kept in memory (the wire server
        reads it on every request when policies are enforced); every change of a topic drops what is kept."""
        if arn in self._policies:
            return self._policies[arn]
        generation = self._policy_generation

        def read(conn: sqlite3.Connection) -> str | None:
            try:
                return self._topic(conn, arn).attributes.get("Policy")
            except SnsError:
                return None

        policy: str | None = await self._run(read)
        if generation == self._policy_generation:  # no topic changed meanwhile: what was read is current
            if len(self._policies) >= 10_000:
                self._policies.clear()
            self._policies[arn] = policy
        return policy

    def _topics_changed(self) -> None:
        """After a topic's creation, deletion or change of attributes: policies are read again."""
        self._policy_generation += 1
        self._policies.clear()

    def _topic(self, conn: sqlite3.Connection, arn: str) -> Topic:
        return load_topic(conn, arn)

    @staticmethod
    def _subscription(conn: sqlite3.Connection, arn: str) -> Subscription:
        return load_subscription(conn, arn)

    # -- queues --------------------------------------------------------------------------------------------

    def _queue_name(self, endpoint: str) -> str | None:
        """The queue an `sqs` endpoint names, if it is a queue ARN of this broker's account and region."""
        parts = endpoint.split(":")
        if len(parts) != 6 or parts[4] != self._account or parts[3] != self._region:
            return None
        return parts[5]

    def _other_region(self, endpoint: str) -> str | None:
        """The region of an `sqs` endpoint of this account in another region, when other regions are reachable."""
        parts = endpoint.split(":")
        if self.region_resolver is None or len(parts) != 6 or parts[4] != self._account or not parts[3]:
            return None
        return parts[3] if parts[3] != self._region else None

    def _dead_letter_queue(self, sub: Subscription) -> str | None:
        """The subscription's RedrivePolicy dead-letter queue, if it is an existing queue of this region."""
        policy = sub.attributes.get("RedrivePolicy")
        if not policy:
            return None
        target = json.loads(policy).get("deadLetterTargetArn")
        name = self._queue_name(target) if isinstance(target, str) else None
        if name is None or not self._engine.queue_exists(name) or self._engine.queue_arn(name) != target:
            return None
        return name

    # -- counters ------------------------------------------------------------------------------------------

    def _counter(self, topic_arn: str) -> Counter[str]:
        counter = self._counters.get(topic_arn)
        if counter is None:
            counter = self._counters[topic_arn] = Counter()
        return counter

    def metrics(self) -> dict[str, dict[str, int]]:
        """Per-topic counters since start: published, delivered, filtered_out, undeliverable,
        duplicates (FIFO deduplication), http_delivered, http_failed, dead_lettered."""
        return {arn: dict(c) for arn, c in self._counters.items()}

    def queue_metrics(self) -> dict[str, int]:
        """Per queue of this engine: messages SNS wrote into it since start (fan-out from this region's
        topics and from other regions', notifications sent to a subscription's dead-letter queue)."""
        return dict(self._queue_sent)
