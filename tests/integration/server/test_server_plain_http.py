"""The SQS server on its plain path (`SCTE_SPEED_PATHS=off`): uvicorn's own HTTP protocol and ASGI request
cycle instead of `SqsHttpProtocol`, as an installation beside another uvicorn release runs it. A real small
run over boto3: the JSON protocol's round trip and a bad request answered with its SQS error code."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent))  # the tests import server_harness (importlib import mode)

from server_harness import CREDENTIALS, REGION, start_server


def test_the_server_answers_on_uvicorns_own_protocol(tmp_path: Path) -> None:
    log = (tmp_path / "server.log").open("wb")
    server = start_server(tmp_path / "data", stderr=log, env={"SCTE_SPEED_PATHS": "off"})
    try:
        sqs = boto3.client("sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)
        url = sqs.create_queue(QueueName="plain")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        received = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in received] == ["hello"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
        with pytest.raises(ClientError) as error:
            sqs.get_queue_url(QueueName="missing")
        assert "NonExistentQueue" in error.value.response["Error"]["Code"]
    finally:
        server.stop()
        log.close()
    assert "speed path queue_http off" in (tmp_path / "server.log").read_text()
