"""HTTP/HTTPS delivery: the `sns_deliveries` outbox (notifications and subscription confirmations written
in the transaction that produced them) and the background deliverer that POSTs them, with retries per the
subscription's DeliveryPolicy and its dead-letter queue when they are exhausted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from scte.queue.errors import SqsError
from scte.queue.topics.base import TopicsBase
from scte.queue.topics.limits import HTTP_TIMEOUT_S
from scte.queue.topics.records import Subscription

ROUND_SIZE = 16


def enqueue_http(
    conn: sqlite3.Connection, sub_arn: str, endpoint: str, payload: tuple[str, dict[str, str]], now_ms: int
) -> None:
    """Write one POST (body, headers) to the outbox, in the caller's transaction."""
    body, headers = payload
    conn.execute(
        "INSERT INTO sns_deliveries (subscription_arn, endpoint, headers, payload, attempts, next_at) "
        "VALUES (?,?,?,?,0,?)",
        (sub_arn, endpoint, json.dumps(headers), body, now_ms),
    )


def retry_policy(attributes: Mapping[str, str]) -> tuple[int, float]:
    """(retries, delay in seconds) from the subscription's DeliveryPolicy; SNS's defaults otherwise."""
    retries, delay = 3, 20.0
    text = attributes.get("DeliveryPolicy")
    if text:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            policy = json.loads(text)
            rule = policy.get("healthyRetryPolicy") or policy.get("http", {}).get("defaultHealthyRetryPolicy", {})
            retries = int(rule.get("numRetries", retries))
            delay = float(rule.get("minDelayTarget", delay))
    return retries, delay


def post(endpoint: str, payload: str, headers: Mapping[str, str]) -> int:
    """POST one notification (in a worker thread); the HTTP status, or 0 when the endpoint is unreachable."""
    request = urllib.request.Request(endpoint, data=payload.encode("utf-8"), method="POST")
    request.add_header("Content-Type", "text/plain; charset=UTF-8")
    request.add_header("User-Agent", "Amazon Simple Notification Service Agent")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


class HttpDelivery(TopicsBase):
    async def _http_round(self) -> float | None:
        """POST the due rows (in parallel threads) and settle them; or the seconds until the next is due."""
        now_ms = self._now_ms()
        rows = await self._run(
            lambda c: c.execute(
                "SELECT d.id, d.subscription_arn, d.endpoint, d.headers, d.payload, d.attempts, s.attributes "
                "FROM sns_deliveries d LEFT JOIN subscriptions s ON s.arn = d.subscription_arn "
                "WHERE d.next_at<=? ORDER BY d.next_at, d.id LIMIT ?",
                (now_ms, ROUND_SIZE),
            ).fetchall()
        )
        if not rows:
            (next_at,) = await self._run(lambda c: c.execute("SELECT MIN(next_at) FROM sns_deliveries").fetchone())
            return 3600.0 if next_at is None else max(0.0, next_at / 1000 - self._engine.clock.now())
        statuses = await asyncio.gather(
            *(
                asyncio.to_thread(post, endpoint, payload, json.loads(headers))
                for _i, _s, endpoint, headers, payload, _a, _x in rows
            )
        )
        counts, touched = await self._run(lambda c: self._settle_http(c, rows, statuses))
        for (topic_arn, key), n in counts.items():
            self._counter(topic_arn)[key] += n
        for queue in touched:
            self._queue_sent[queue] += 1
            self._engine._notify(queue)
        return None

    def _settle_http(
        self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], statuses: Sequence[int]
    ) -> tuple[Counter[tuple[str, str]], list[str]]:
        """Record the outcome of a round of posts: done, retry later, or given up (to the DLQ)."""
        now_ms = self._now_ms()
        touched: list[str] = []
        counts: Counter[tuple[str, str]] = Counter()
        for (row_id, sub_arn, _endpoint, _headers, payload, attempts, sub_attrs), status in zip(
            rows, statuses, strict=True
        ):
            topic_arn = sub_arn.rsplit(":", 1)[0]
            if 200 <= status < 300:
                conn.execute("DELETE FROM sns_deliveries WHERE id=?", (row_id,))
                counts[topic_arn, "http_delivered"] += 1
                continue
            attrs = json.loads(sub_attrs) if sub_attrs else {}
            retries, delay = retry_policy(attrs)
            permanent = 400 <= status < 500 and status != 429
            if sub_attrs is None or permanent or attempts >= retries:
                conn.execute("DELETE FROM sns_deliveries WHERE id=?", (row_id,))
                counts[topic_arn, "http_failed"] += 1
                sub = Subscription(sub_arn, topic_arn, "http", "", "", attrs, True, None, False)
                dlq = self._dead_letter_queue(sub) if sub_attrs is not None else None
                if dlq is not None:
                    entry = self._engine._prepare({"MessageBody": payload})
                    (result,) = self._engine._ops.send(conn, dlq, (entry,))
                    if not isinstance(result, SqsError):
                        touched.append(dlq)
                        counts[topic_arn, "dead_lettered"] += 1
                continue
            conn.execute(
                "UPDATE sns_deliveries SET attempts=attempts+1, next_at=? WHERE id=?",
                (now_ms + int(delay * 1000), row_id),
            )
        return counts, touched
