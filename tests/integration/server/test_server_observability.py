"""`/metrics` after known traffic, and one parseable JSON log line per request."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from prometheus_client.parser import text_string_to_metric_families
from server_harness import CREDENTIALS, REGION, start_server


def scrape(endpoint: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(endpoint + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def q(name: str, queue: str, region: str = REGION) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, (("queue", queue), ("region", region))


def test_metrics_and_request_logs(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = start_server(tmp_path / "data", stderr=log)
    try:
        sqs = boto3.client("sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)
        url = sqs.create_queue(QueueName="metered")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])
        sqs.send_message(QueueUrl=url, MessageBody="one more")
        received: list[dict[str, Any]] = []
        while len(received) < 6:
            received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received[:3])],
        )
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received[3]["ReceiptHandle"])
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)

        dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 1})
        source = sqs.create_queue(QueueName="source", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        sqs.send_message(QueueUrl=source, MessageBody="poison")
        assert sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
        assert "Messages" not in sqs.receive_message(QueueUrl=source)  # received twice: moved to the DLQ

        sns = boto3.client("sns", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)
        topic = sns.create_topic(Name="news")["TopicArn"]
        inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=inbox_arn,
            Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"kind": ["yes"]})},
        )
        for kind in ("yes", "no"):
            sns.publish(
                TopicArn=topic, Message=kind, MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}}
            )
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.get_queue_url(QueueName="missing")

        time.sleep(1.1)  # the oldest message's age grows
        m = scrape(server.endpoint)
        assert m[q("scte_queue_messages_sent_total", "metered")] == 7
        assert m[q("scte_queue_messages_received_total", "metered")] == 6
        assert m[q("scte_queue_messages_deleted_total", "metered")] == 4
        assert m[q("scte_queue_messages_visible", "metered")] == 0
        assert m[q("scte_queue_messages_in_flight", "metered")] == 2
        assert m[q("scte_queue_messages_delayed", "metered")] == 1
        assert m[q("scte_queue_oldest_message_age_seconds", "metered")] >= 1
        assert m[q("scte_queue_messages_moved_to_dlq_total", "source")] == 1
        assert m[q("scte_queue_messages_visible", "dead")] == 1
        assert m[q("scte_queue_messages_visible", "source")] == 0
        assert m[q("scte_queue_messages_visible", "inbox")] == 1
        assert m[q("scte_queue_messages_sent_total", "inbox")] == 1  # fanned out by SNS: counted as sent
        assert m[q("scte_queue_oldest_message_age_seconds", "source")] == 0
        topic_labels = (("region", REGION), ("topic", "news"))
        assert m[("scte_topic_messages_published_total", topic_labels)] == 2
        assert m[("scte_topic_messages_delivered_total", topic_labels)] == 1
        assert m[("scte_topic_messages_filtered_out_total", topic_labels)] == 1
        assert m[("scte_requests_total", (("action", "SendMessageBatch"), ("status", "200")))] == 1
        assert m[("scte_requests_total", (("action", "GetQueueUrl"), ("status", "400")))] == 1
    finally:
        server.stop()

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    sends = [r for r in lines if r["action"] == "SendMessageBatch"]
    assert len(sends) == 1
    (send,) = sends
    assert send["queue"] == "metered" and send["status"] == 200 and send["error"] is None
    assert send["region"] == REGION and len(send["request_id"]) == 36
    assert isinstance(send["duration_ms"], float) and 0 <= send["duration_ms"] < 5000
    assert abs(send["time"] - time.time()) < 120
    (missing,) = [r for r in lines if r["action"] == "GetQueueUrl" and r["status"] == 400]
    assert missing["error"] == "AWS.SimpleQueueService.NonExistentQueue" and missing["queue"] == "missing"
    assert any(r["action"] == "Publish" and r["status"] == 200 for r in lines)  # SNS requests are logged too


def test_log_level_warning_silences_request_lines(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = start_server(tmp_path / "data", "--log-level", "warning", stderr=log)
    try:
        boto3.client("sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS).list_queues()
    finally:
        server.stop()
    assert not [line for line in log_path.read_text().splitlines() if line.startswith("{")]
