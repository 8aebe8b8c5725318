"""The query protocol (form-encoded, XML responses): raw SigV4-signed requests as old SDKs send them, and a
botocore client whose model is turned back into the query protocol (so botocore's own query parser reads
every response)."""

from __future__ import annotations

import json
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from server_harness import ACCOUNT, REGION, Server

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"


def signed_post(url: str, form: dict[str, str]) -> tuple[int, ET.Element]:
    body = urlencode({**form, "Version": "2012-11-05"})
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "sqs", REGION).add_auth(request)
    prepared = request.prepare()
    assert prepared.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    http_request = urllib.request.Request(
        prepared.url,
        data=prepared.body if isinstance(prepared.body, bytes) else str(prepared.body).encode(),
        headers=dict(prepared.headers),
        method="POST",
    )
    try:
        with urllib.request.urlopen(http_request, timeout=10) as resp:
            return resp.status, ET.fromstring(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, ET.fromstring(err.read())


def text(root: ET.Element, path: str) -> str:
    node = root.find(path.replace("/", f"/{NS}").join(["", ""]) if False else "/".join(NS + p for p in path.split("/")))
    assert node is not None, (path, ET.tostring(root))
    return node.text or ""


def test_raw_signed_send_receive_delete(server: Server) -> None:
    status, root = signed_post(
        server.endpoint,
        {
            "Action": "CreateQueue",
            "QueueName": "raw-q",
            "Attribute.1.Name": "VisibilityTimeout",
            "Attribute.1.Value": "20",
        },
    )
    assert status == 200 and root.tag == f"{NS}CreateQueueResponse"
    url = text(root, "CreateQueueResult/QueueUrl")
    assert url == f"{server.endpoint}/queue/us-east-1/{ACCOUNT}/raw-q"
    status, root = signed_post(
        url,
        {
            "Action": "SendMessage",
            "MessageBody": "line1\r\nline2 <&>",
            "MessageAttribute.1.Name": "color",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "blue",
        },
    )
    assert status == 200, ET.tostring(root)
    message_id = text(root, "SendMessageResult/MessageId")
    status, root = signed_post(
        url,
        {
            "Action": "ReceiveMessage",
            "MessageAttributeName.1": "All",
            "AttributeName.1": "ApproximateReceiveCount",
            "WaitTimeSeconds": "1",
        },
    )
    assert status == 200
    assert text(root, "ReceiveMessageResult/Message/MessageId") == message_id
    assert text(root, "ReceiveMessageResult/Message/Body") == "line1\r\nline2 <&>"
    assert text(root, "ReceiveMessageResult/Message/MessageAttribute/Name") == "color"
    assert text(root, "ReceiveMessageResult/Message/MessageAttribute/Value/StringValue") == "blue"
    assert text(root, "ReceiveMessageResult/Message/Attribute/Value") == "1"
    handle = text(root, "ReceiveMessageResult/Message/ReceiptHandle")
    status, root = signed_post(url, {"Action": "DeleteMessage", "ReceiptHandle": handle})
    assert status == 200 and root.tag == f"{NS}DeleteMessageResponse"
    text(root, "ResponseMetadata/RequestId")


def test_raw_signed_error(server: Server) -> None:
    status, root = signed_post(server.endpoint, {"Action": "GetQueueUrl", "QueueName": "no-such-queue"})
    assert status == 400 and root.tag == f"{NS}ErrorResponse"
    assert text(root, "Error/Code") == "AWS.SimpleQueueService.NonExistentQueue"
    assert text(root, "Error/Type") == "Sender"
    assert text(root, "Error/Message") == "The specified queue does not exist for this wsdl version."
    status, root = signed_post(server.endpoint, {"Action": "Frobnicate"})
    assert status == 400 and text(root, "Error/Code") == "InvalidAction"


def test_query_client_every_shape(sqs_query: Any) -> None:
    sqs = sqs_query
    url = sqs.create_queue(QueueName="q-shapes", Attributes={"DelaySeconds": "0"}, tags={"k": "v"})["QueueUrl"]
    assert url in sqs.list_queues()["QueueUrls"]
    assert sqs.get_queue_url(QueueName="q-shapes")["QueueUrl"] == url
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"k": "v"}
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"].endswith(":q-shapes")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"bin": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}},
    )
    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two", "DelaySeconds": 1000}],
    )
    assert [e["Id"] for e in batch["Successful"]] == ["a"]
    assert batch["Failed"][0]["Id"] == "b" and batch["Failed"][0]["SenderFault"] is True
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert len(got) == 2
    first = next(m for m in got if m["MessageId"] == sent["MessageId"])
    assert first["MessageAttributes"]["bin"]["BinaryValue"] == b"\x01\x02"
    assert first["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    vis = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "v", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 30}]
    )
    assert vis["Successful"] == [{"Id": "v"}]
    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
    )
    assert len(deleted["Successful"]) == 2
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.tag_queue(QueueUrl=url, Tags={"x": "1"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["k"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"x": "1"}
    sqs.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"])
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(policy)["Statement"][0]["Sid"] == "l"
    sqs.remove_permission(QueueUrl=url, Label="l")
    assert sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", []) == []  # XML: empty = absent
    sqs.purge_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert exc.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
