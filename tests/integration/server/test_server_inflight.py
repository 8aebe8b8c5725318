"""`scte queue serve --inflight-limit`: boto3 and the query protocol see SQS's `OverLimit` (HTTP 403)
when a queue has that many messages in flight; a bad limit is refused at start-up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from server_harness import CREDENTIALS, REGION, Server, start_server

from scte.queue.server.config import ServerConfig

LIMIT = 3


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("broker"), "--inflight-limit", str(LIMIT))
    yield srv
    srv.stop()


def over_limit(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response
    assert error["Error"]["Code"] == "OverLimit"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert str(LIMIT) in error["Error"]["Message"]
    return info.value


def test_boto3_gets_over_limit_at_the_limit(limited: Server) -> None:
    sqs = boto3.client("sqs", endpoint_url=limited.endpoint, region_name=REGION, **CREDENTIALS)
    url = sqs.create_queue(QueueName="limited")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == LIMIT
    over_limit(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1))
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == str(LIMIT)
    assert attrs["ApproximateNumberOfMessages"] == "2"  # waiting, not lost


def test_the_query_protocol_gets_over_limit_too(limited: Server, sqs_query_factory: Callable[..., Any]) -> None:
    sqs = sqs_query_factory(limited, CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    url = sqs.create_queue(QueueName="limited-query")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(4)])
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == LIMIT
    over_limit(lambda: sqs.receive_message(QueueUrl=url))


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_a_bad_limit_is_refused_at_start(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scte.cli", "queue", "serve", "--data", str(tmp_path), "--inflight-limit", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "inflight-limit" in done.stderr.lower() or "in-flight limit" in done.stderr


def test_the_limit_from_the_environment() -> None:
    assert ServerConfig.from_env({"SCTE_QUEUE_INFLIGHT_LIMIT": "500"}).inflight_limit == 500
    assert ServerConfig.from_env({}).inflight_limit == 120_000
    with pytest.raises(ValueError, match="SCTE_QUEUE_INFLIGHT_LIMIT"):
        ServerConfig.from_env({"SCTE_QUEUE_INFLIGHT_LIMIT": "lots"})
    with pytest.raises(ValueError, match="in-flight limit"):
        ServerConfig.from_env({"SCTE_QUEUE_INFLIGHT_LIMIT": "0"})
