"""Fan-out to queues of other regions: the `sns_region_deliveries` outbox and its deliverer.

Each region is its own engine and SQLite file, so a publish cannot write into another region's queue in
its own transaction. Instead it writes, in that transaction, one outbox row per matching subscription
whose queue is in another region (the message exactly as the queue is to receive it); after the commit
the publish makes the first attempt itself, and a background worker retries what is left. An attempt
asks `region_resolver` for the other region's engine, writes the messages there in one transaction
(`accept_from_region`), then deletes the rows here: a crash between the two repeats the delivery, so
it is at least once (FIFO queues deduplicate it on the MessageDeduplicationId). Rows for one queue go in
order: a row waiting for a retry holds back the later rows of its queue.

Unavailable region (engine closing, resolver failing): retried with a backoff up to 20 s, without limit.
A queue that does not exist there, or that refuses the message: the row is given up like a same-region
missing queue (the subscription's dead-letter queue when it is a queue of this region, else counted
`undeliverable`).
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scte.queue.errors import SqsError
from scte.queue.topics.base import TopicsBase
from scte.queue.topics.outbox import IDLE_WAIT_S
from scte.queue.topics.records import Subscription

log = logging.getLogger(__name__)

ROUND_SIZE = 64
MAX_RETRY_DELAY_MS = 20_000
FIRST_RETRY_DELAY_MS = 100

Request = dict[str, Any]  # MessageBody, MessageAttributes, MessageGroupId, MessageDeduplicationId


def encode_request(request: Mapping[str, Any]) -> str:
    """JSON of a send request; binary attribute values base64."""
    out = dict(request)
    attributes = request.get("MessageAttributes")
    if attributes:
        out["MessageAttributes"] = {
            name: (
                {**attr, "BinaryValue": base64.b64encode(attr["BinaryValue"]).decode("ascii")}
                if "BinaryValue" in attr
                else dict(attr)
            )
            for name, attr in attributes.items()
        }
    return json.dumps(out, ensure_ascii=False)


def decode_request(text: str) -> Request:
    request: Request = json.loads(text)
    attributes = request.get("MessageAttributes")
    if attributes:
        for attr in attributes.values():
            if "BinaryValue" in attr:
                attr["BinaryValue"] = base64.b64decode(attr["BinaryValue"])
    return request


def enqueue_region(
    conn: sqlite3.Connection, sub_arn: str, queue_arn: str, request: Mapping[str, Any], now_ms: int
) -> None:
    """Write one delivery to another region's queue to the outbox, in the caller's (the publish's) transaction."""
    conn.execute(
        "INSERT INTO sns_region_deliveries (subscription_arn, queue_arn, request, attempts, next_at) "
        "VALUES (?,?,?,0,?)",
        (sub_arn, queue_arn, encode_request(request), now_ms),
    )


def retry_delay_ms(attempts: int) -> int:
    return int(min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** min(attempts, 20)))


@dataclass(slots=True)
class _Row:
    id: int
    subscription_arn: str
    queue_arn: str
    request: str
    attempts: int
    sub_attributes: str | None

    @property
    def region(self) -> str:
        return self.queue_arn.split(":")[3]


# Outcome of one row's attempt: None delivered; a string: given up (why); RETRY: try again later.
RETRY = object()


class RegionDelivery(TopicsBase):
    async def _deliver_to_regions_now(self) -> None:
        """After a publish committed rows: the first attempt, before the publish returns; the worker
        takes over whatever is left (retries, and rows of a publish that crashed before this)."""
        try:
            await self._region_round()
        except Exception:
            log.exception("cross-region delivery attempt failed; the background deliverer will retry")
        self._region_worker.kick()

    async def _region_round(self) -> float | None:
        async with self._region_lock:
            return await self._region_round_locked()

    async def _region_round_locked(self) -> float | None:
        if self.region_resolver is None:
            return IDLE_WAIT_S  # rows (from a run that had one) wait for a resolver
        now_ms = self._now_ms()

        def select(conn: sqlite3.Connection) -> tuple[list[_Row], dict[str, int], int | None]:
            rows = [
                _Row(*r)
                for r in conn.execute(
                    "SELECT d.id, d.subscription_arn, d.queue_arn, d.request, d.attempts, s.attributes "
                    "FROM sns_region_deliveries d LEFT JOIN subscriptions s ON s.arn = d.subscription_arn "
                    "WHERE d.next_at<=? ORDER BY d.id LIMIT ?",
                    (now_ms, ROUND_SIZE),
                )
            ]
            waiting = dict(
                conn.execute(
                    "SELECT queue_arn, MIN(id) FROM sns_region_deliveries WHERE next_at>? GROUP BY queue_arn",
                    (now_ms,),
                ).fetchall()
            )
            (next_at,) = conn.execute(
                "SELECT MIN(next_at) FROM sns_region_deliveries WHERE next_at>?", (now_ms,)
            ).fetchone()
            return rows, waiting, next_at

        rows, waiting, next_at = await self._run(select)
        # Per queue, in order: a row that waits for its retry holds back the later ones.
        due = [r for r in rows if r.id < waiting.get(r.queue_arn, r.id + 1)]
        if not due:
            return IDLE_WAIT_S if next_at is None else max(0.0, next_at / 1000 - self._engine.clock.now())
        by_region: dict[str, list[_Row]] = defaultdict(list)
        for row in due:
            by_region[row.region].append(row)
        outcomes: dict[int, object] = {}
        for region, region_rows in by_region.items():
            for row, outcome in zip(region_rows, await self._attempt_region(region, region_rows), strict=True):
                outcomes[row.id] = outcome
        counts, touched = await self._run(lambda c: self._settle_regions(c, due, outcomes))
        for (topic_arn, key), n in counts.items():
            self._counter(topic_arn)[key] += n
        for queue in touched:
            self._queue_sent[queue] += 1
            self._engine._notify(queue)
        return None

    async def _attempt_region(self, region: str, rows: Sequence[_Row]) -> list[object]:
        assert self.region_resolver is not None
        try:
            engine = await self.region_resolver(region)
        except LookupError as exc:
            return [f"region {region} is not served: {exc}"] * len(rows)
        except Exception as exc:
            log.warning("region %s unavailable for SNS deliveries (%s); retrying", region, exc)
            return [RETRY] * len(rows)
        if engine is None or engine is self._engine:
            return [RETRY if engine is None else f"region {region} is this region"] * len(rows)
        try:
            results = await engine.topics.accept_from_region([(r.queue_arn, decode_request(r.request)) for r in rows])
        except Exception as exc:  # the engine is closing (StoreClosed), or its store failed
            log.warning("region %s did not take SNS deliveries (%r); retrying", region, exc)
            return [RETRY] * len(rows)
        return list(results)

    async def accept_from_region(self, deliveries: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str | None]:
        """Write messages fanned out by another region's topics into this engine's queues, in one
        transaction: for each (queue ARN, send request) None when written, else why it cannot be."""
        engine = self._engine
        prepared: list[tuple[str | None, Any]] = []
        for queue_arn, request in deliveries:
            name = self._queue_name(queue_arn)
            if name is None or not engine.queue_exists(name) or engine.queue_arn(name) != queue_arn:
                prepared.append((None, f"queue {queue_arn} does not exist"))
                continue
            send = dict(request)
            if not engine.is_fifo(name):
                send["MessageDeduplicationId"] = None
            try:
                prepared.append((name, engine._prepare(send)))
            except SqsError as exc:
                prepared.append((None, exc.message))

        def write(conn: sqlite3.Connection) -> list[str | None]:
            out: list[str | None] = []
            for name, entry in prepared:
                if name is None:
                    out.append(str(entry))
                    continue
                try:
                    (result,) = engine._ops.send(conn, name, (entry,))
                except SqsError as exc:  # the queue went away meanwhile
                    result = exc
                out.append(result.message if isinstance(result, SqsError) else None)
            return out

        results: list[str | None] = await self._run(write)
        for (name, _entry), result in zip(prepared, results, strict=True):
            if result is None and name is not None:
                self._queue_sent[name] += 1
                engine._notify(name)
        return results

    def _settle_regions(
        self, conn: sqlite3.Connection, rows: Sequence[_Row], outcomes: Mapping[int, object]
    ) -> tuple[Counter[tuple[str, str]], list[str]]:
        """Record a round: delivered rows go, failed ones wait for a retry, given-up ones go to the DLQ."""
        now_ms = self._now_ms()
        counts: Counter[tuple[str, str]] = Counter()
        touched: list[str] = []
        for row in rows:
            outcome = outcomes[row.id]
            topic_arn = row.subscription_arn.rsplit(":", 1)[0]
            if outcome is RETRY:
                conn.execute(
                    "UPDATE sns_region_deliveries SET attempts=attempts+1, next_at=? WHERE id=?",
                    (now_ms + retry_delay_ms(row.attempts), row.id),
                )
                continue
            conn.execute("DELETE FROM sns_region_deliveries WHERE id=?", (row.id,))
            if outcome is None:
                counts[topic_arn, "delivered"] += 1
                continue
            log.warning("SNS delivery from %s to %s given up: %s", topic_arn, row.queue_arn, outcome)
            attrs = json.loads(row.sub_attributes) if row.sub_attributes else {}
            sub = Subscription(row.subscription_arn, topic_arn, "sqs", row.queue_arn, "", attrs, True, None, False)
            dlq = self._dead_letter_queue(sub) if row.sub_attributes is not None else None
            result: object = None
            if dlq is not None:
                request = decode_request(row.request)
                if not self._engine.is_fifo(dlq):
                    request["MessageDeduplicationId"] = None
                try:
                    (result,) = self._engine._ops.send(conn, dlq, (self._engine._prepare(request),))
                except SqsError as exc:
                    result = exc
            if dlq is None or isinstance(result, SqsError):
                counts[topic_arn, "undeliverable"] += 1
            else:
                touched.append(dlq)
                counts[topic_arn, "dead_lettered"] += 1
        return counts, touched
