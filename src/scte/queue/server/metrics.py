"""`GET /metrics` in the Prometheus text format (prometheus-client).

Counters are plain integers bumped by the request path (one dictionary update per counted call) and turned
into metric families only at scrape time, by a custom collector: nothing on the hot path takes a lock or
builds label objects. Gauges are computed at scrape time from each region's engine.

Per queue (labels `region`, `queue`):
`scte_queue_messages_sent_total` (SendMessage(Batch), and messages SNS wrote into the queue: fan-out from
topics of any region, notifications given up to a subscription's dead-letter queue),
`scte_queue_messages_received_total`, `scte_queue_messages_deleted_total`,
`scte_queue_messages_moved_to_dlq_total` (counters, since the server started);
`scte_queue_messages_visible`, `scte_queue_messages_in_flight`, `scte_queue_messages_delayed`,
`scte_queue_oldest_message_age_seconds` (gauges).
Per topic (labels `region`, `topic`): `scte_topic_messages_published_total`,
`scte_topic_messages_delivered_total`, `scte_topic_messages_filtered_out_total`.
Per action (label `action`, `status`): `scte_requests_total`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scte.queue.engine import Engine

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()

SENT, RECEIVED, DELETED = 0, 1, 2
_COUNTERS = (
    ("scte_queue_messages_sent", "Messages accepted by SendMessage and SendMessageBatch, or fanned out by SNS."),
    ("scte_queue_messages_received", "Messages handed out by ReceiveMessage."),
    ("scte_queue_messages_deleted", "Messages deleted by DeleteMessage and DeleteMessageBatch."),
)
_GAUGES = (
    ("scte_queue_messages_visible", "Messages available for retrieval (ApproximateNumberOfMessages)."),
    ("scte_queue_messages_in_flight", "Messages received and not yet deleted or visible again."),
    ("scte_queue_messages_delayed", "Messages not yet visible because of a delay."),
    ("scte_queue_oldest_message_age_seconds", "Age of the oldest message in the queue."),
)
_TOPIC_COUNTERS = (
    ("published", "scte_topic_messages_published", "Messages published to the topic."),
    ("delivered", "scte_topic_messages_delivered", "Deliveries to subscriptions."),
    ("filtered_out", "scte_topic_messages_filtered_out", "Deliveries skipped by a subscription's filter policy."),
)


def _successful(result: Mapping[str, Any]) -> int:
    return len(result.get("Successful") or ())


def _received(result: Mapping[str, Any]) -> int:
    return len(result.get("Messages") or ())


def _one(_result: Mapping[str, Any]) -> int:
    return 1


# Action -> (counter index, how many messages its result counts).
COUNTED = {
    "SendMessage": (SENT, _one),
    "SendMessageBatch": (SENT, _successful),
    "ReceiveMessage": (RECEIVED, _received),
    "DeleteMessage": (DELETED, _one),
    "DeleteMessageBatch": (DELETED, _successful),
}


class Metrics:
    """The server's counters and the scrape."""

    def __init__(self) -> None:
        self.queues: dict[tuple[str, str], list[int]] = {}  # (region, queue) -> [sent, received, deleted]
        self.requests: dict[tuple[str, int], int] = {}  # (action, status) -> count

    def count_request(self, action: str, status: int) -> None:
        key = (action, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def count_messages(self, region: str, queue: str | None, action: str, result: Mapping[str, Any]) -> None:
        """After a successful call: the messages it sent, received or deleted."""
        counted = COUNTED.get(action)
        if counted is None or queue is None:
            return
        index, count = counted
        values = self.queues.get((region, queue))
        if values is None:
            values = self.queues[(region, queue)] = [0, 0, 0]
        values[index] += count(result)

    def reset(self) -> None:
        self.queues.clear()
        self.requests.clear()

    async def render(self, engines: Mapping[str, Engine]) -> bytes:
        gauges = {region: await engine.queue_gauges() for region, engine in engines.items()}
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, engines, gauges))
        return bytes(generate_latest(registry))


class _Collector:
    def __init__(
        self,
        metrics: Metrics,
        engines: Mapping[str, Engine],
        gauges: Mapping[str, Mapping[str, tuple[int, int, int, float]]],
    ) -> None:
        self.metrics = metrics
        self.engines = engines
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        labels = ["region", "queue"]
        counters = [CounterMetricFamily(name, doc, labels=labels) for name, doc in _COUNTERS]
        queues = {key: list(values) for key, values in self.metrics.queues.items()}
        for region, engine in self.engines.items():  # messages SNS fanned out into queues count as sent
            for queue, sent in engine.topics.queue_metrics().items():
                queues.setdefault((region, queue), [0, 0, 0])[SENT] += sent
        for (region, queue), values in sorted(queues.items()):
            for family, value in zip(counters, values, strict=True):
                family.add_metric([region, queue], value)
        dlq = CounterMetricFamily(
            "scte_queue_messages_moved_to_dlq",
            "Messages moved to the dead-letter queue, by source queue.",
            labels=labels,
        )
        gauges = [GaugeMetricFamily(name, doc, labels=labels) for name, doc in _GAUGES]
        topics = [CounterMetricFamily(name, doc, labels=["region", "topic"]) for _k, name, doc in _TOPIC_COUNTERS]
        for region, engine in sorted(self.engines.items()):
            for queue, moved in sorted(engine.dead_lettered.items()):
                dlq.add_metric([region, queue], moved)
            for queue, levels in sorted(self.gauges.get(region, {}).items()):
                for gauge_family, level in zip(gauges, levels, strict=True):
                    gauge_family.add_metric([region, queue], level)
            for arn, topic_counters in sorted(engine.topics.metrics().items()):
                topic = arn.rsplit(":", 1)[-1]
                for family, (key, _name, _doc) in zip(topics, _TOPIC_COUNTERS, strict=True):
                    family.add_metric([region, topic], topic_counters.get(key, 0))
        requests = CounterMetricFamily(
            "scte_requests", "Requests answered, by action and HTTP status.", labels=["action", "status"]
        )
        for (action, status), count in sorted(self.metrics.requests.items()):
            requests.add_metric([action, str(status)], count)
        yield from counters
        yield dlq
        yield from gauges
        yield from topics
        yield requests
