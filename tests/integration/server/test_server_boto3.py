"""Every SQS action through boto3 (JSON protocol) against the real server, errors included."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from server_harness import ACCOUNT, Server


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def make_queue(sqs: Any, name: str, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def test_queue_lifecycle(sqs: Any, server: Server) -> None:
    url = make_queue(sqs, "life", VisibilityTimeout="12")
    assert url == f"{server.endpoint}/queue/us-east-1/{ACCOUNT}/life"
    assert sqs.get_queue_url(QueueName="life")["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="li")["QueueUrls"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "12"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:life"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"]
    assert attrs == {"DelaySeconds": "3"}
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_url(QueueName="life")
    assert error_code(exc) == "AWS.SimpleQueueService.NonExistentQueue"
    assert exc.value.response["Error"]["Message"] == "The specified queue does not exist."


def test_list_queues_pages(sqs: Any) -> None:
    for i in range(3):
        make_queue(sqs, f"page-{i}")
    first = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2)
    assert len(first["QueueUrls"]) == 2
    second = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2, NextToken=first["NextToken"])
    assert len(second["QueueUrls"]) == 1 and "NextToken" not in second
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="none-such")


def test_send_receive_delete(sqs: Any) -> None:
    url = make_queue(sqs, "messages")
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="héllo",
        MessageAttributes={
            "s": {"DataType": "String", "StringValue": "v"},
            "n": {"DataType": "Number", "StringValue": "42"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    assert sent["MD5OfMessageBody"] and sent["MD5OfMessageAttributes"]
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"], WaitTimeSeconds=1)[
        "Messages"
    ]
    assert len(got) == 1
    msg = got[0]
    assert msg["Body"] == "héllo" and msg["MessageId"] == sent["MessageId"]
    assert msg["MessageAttributes"]["b"] == {"DataType": "Binary", "BinaryValue": b"\x00\xff"}
    assert msg["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    with pytest.raises(ClientError) as exc:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    assert error_code(exc) == "ReceiptHandleIsInvalid"


def test_batches_and_visibility(sqs: Any) -> None:
    url = make_queue(sqs, "batches")
    result = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(3)]
        + [{"Id": "bad", "MessageBody": "x", "DelaySeconds": 901}],
    )
    assert sorted(e["Id"] for e in result["Successful"]) == ["m0", "m1", "m2"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [
        ("bad", "InvalidParameterValue", True)
    ]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 3
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(got)
        ],
    )
    assert len(changed["Successful"]) == 3 and not changed["Failed"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(again) == 3
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"], VisibilityTimeout=60)
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)]
    )
    assert len(deleted["Successful"]) == 3
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    assert error_code(exc) == "AWS.SimpleQueueService.EmptyBatchRequest"
    with pytest.raises(ClientError) as exc:
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": "a"}, {"Id": "x", "ReceiptHandle": "b"}]
        )
    assert error_code(exc) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


def test_purge_tags_permissions(sqs: Any) -> None:
    url = make_queue(sqs, "admin")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.tag_queue(QueueUrl=url, Tags={"team": "a", "env": "dev"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    sqs.add_permission(QueueUrl=url, Label="p1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Sid"] == "p1"
    sqs.remove_permission(QueueUrl=url, Label="p1")
    with pytest.raises(ClientError) as exc:
        sqs.remove_permission(QueueUrl=url, Label="p1")
    assert error_code(exc) == "InvalidParameterValue"


def test_dead_letters_and_move_tasks(sqs: Any) -> None:
    dlq = make_queue(sqs, "dlq")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = make_queue(sqs, "source", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    assert sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=source)  # moved to the DLQ on the next receive
    assert sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert tasks and tasks[0]["SourceArn"] == dlq_arn
    deadline = time.monotonic() + 10
    while sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]["Status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_code(exc) in ("InvalidParameterValue", "ResourceNotFoundException")
    got = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=2)["Messages"]
    assert got[0]["Body"] == "poison"


def test_errors(sqs: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=f"http://elsewhere:1/{ACCOUNT}/missing", MessageBody="x")
    assert error_code(exc) == "AWS.SimpleQueueService.NonExistentQueue"
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    make_queue(sqs, "exists", VisibilityTimeout="5")
    with pytest.raises(ClientError) as exc:
        make_queue(sqs, "exists", VisibilityTimeout="6")
    assert error_code(exc) == "QueueAlreadyExists"
    url = make_queue(sqs, "exists")
    with pytest.raises(ClientError) as exc:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nope"])
    assert error_code(exc) == "InvalidAttributeName"


def raw(server: Server, body: bytes, headers: dict[str, str], path: str = "/") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def test_json_wire_errors(server: Server, sqs: Any) -> None:
    status, headers, body = raw(server, b"{}", {**JSON_HEADERS, "X-Amz-Target": "AmazonSQS.Frobnicate"})
    assert status == 400
    assert json.loads(body)["__type"] == "com.amazon.coral.service#UnknownOperationException"
    assert headers["x-amzn-query-error"] == "InvalidAction;Sender"
    status, _h, body = raw(server, b"{not json", {**JSON_HEADERS, "X-Amz-Target": "AmazonSQS.ListQueues"})
    assert status == 400 and "SerializationException" in json.loads(body)["__type"]
    url = make_queue(sqs, "types")
    bad = json.dumps({"QueueUrl": url, "MessageBody": 5}).encode()
    status, _h, body = raw(server, bad, {**JSON_HEADERS, "X-Amz-Target": "AmazonSQS.SendMessage"})
    assert status == 400 and "SerializationException" in json.loads(body)["__type"]
    bad = json.dumps({"QueueUrl": url, "MaxNumberOfMessages": "ten"}).encode()
    status, _h, body = raw(server, bad, {**JSON_HEADERS, "X-Amz-Target": "AmazonSQS.ReceiveMessage"})
    assert status == 400


def test_queue_named_by_path(server: Server, sqs: Any) -> None:
    make_queue(sqs, "by-path")
    body = json.dumps({"MessageBody": "via path"}).encode()
    status, _h, out = raw(
        server, body, {**JSON_HEADERS, "X-Amz-Target": "AmazonSQS.SendMessage"}, path=f"/{ACCOUNT}/by-path"
    )
    assert status == 200 and json.loads(out)["MessageId"]
    url = sqs.get_queue_url(QueueName="by-path")["QueueUrl"]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "via path"


def test_health(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    conn.close()
