"""Principals and resource policies (`--auth strict --credentials FILE`), through boto3 against a real broker.

Three services and the owner: `learning` publishes to its topic, `certification` reads the queue subscribed
to it, `media` is an intruder with a valid key of its own. Refused calls answer SQS `AccessDenied` or SNS
`AuthorizationError` (HTTP 403) and change nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from server_harness import ACCOUNT, REGION, Server, start_server

ADMIN = ("AKIDOWNER0001", "owner-secret-0123456789")
LEARNING = ("AKIDLEARNING01", "learning-secret-0123456789")
CERTIFICATION = ("AKIDCERTIFIC01", "certification-secret-0123456789")
MEDIA = ("AKIDMEDIA00001", "media-secret-0123456789abc")


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/scte-{name}"


def write_credentials(path: Path, entries: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": entries}), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def entry(key: tuple[str, str], principal: str, **extra: Any) -> dict[str, Any]:
    return {"access_key_id": key[0], "secret_access_key": key[1], "principal": principal, **extra}


KEYS = [
    entry(ADMIN, f"arn:aws:iam::{ACCOUNT}:root", admin=True),
    entry(LEARNING, role("learning")),
    entry(CERTIFICATION, role("certification")),
    entry(MEDIA, role("media")),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("policies")
    credentials = data / "credentials.json"
    write_credentials(credentials, KEYS)
    server = start_server(data / "queue", "--auth", "strict", "--credentials", str(credentials))
    yield server
    server.stop()


def client(server: Server, key: tuple[str, str], service: str = "sqs", **kw: Any) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        **kw,
    )


def refused(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


class Topology:
    def __init__(self, server: Server, name: str) -> None:
        admin_sns, admin_sqs = client(server, ADMIN, "sns"), client(server, ADMIN)
        self.topic = admin_sns.create_topic(Name=f"{name}.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
        self.other_topic = admin_sns.create_topic(Name=f"{name}-other")["TopicArn"]
        self.queue = admin_sqs.create_queue(QueueName=f"{name}-q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        self.plain_queue = admin_sqs.create_queue(QueueName=f"{name}-plain")["QueueUrl"]
        self.queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}-q.fifo"
        self.plain_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}-plain"
        self.topic_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "owner-publishes",
                    "Effect": "Allow",
                    "Principal": {"AWS": role("learning")},
                    "Action": "sns:Publish",
                    "Resource": self.topic,
                },
                {
                    "Sid": "subscriber",
                    "Effect": "Allow",
                    "Principal": {"AWS": role("certification")},
                    "Action": ["sns:Subscribe", "sns:GetTopicAttributes"],
                    "Resource": self.topic,
                },
            ],
        }
        self.queue_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "consumer",
                    "Effect": "Allow",
                    "Principal": {"AWS": role("certification")},
                    "Action": [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueUrl",
                        "sqs:GetQueueAttributes",
                    ],
                    "Resource": self.queue_arn,
                },
                {
                    "Sid": "sns",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic}},
                },
            ],
        }
        admin_sns.set_topic_attributes(
            TopicArn=self.topic, AttributeName="Policy", AttributeValue=json.dumps(self.topic_policy)
        )
        admin_sqs.set_queue_attributes(QueueUrl=self.queue, Attributes={"Policy": json.dumps(self.queue_policy)})
        admin_sns.subscribe(
            TopicArn=self.topic,
            Protocol="sqs",
            Endpoint=self.queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        # a subscription the queue's policy does not allow: SNS gets nothing through to the queue
        admin_sns.subscribe(TopicArn=self.other_topic, Protocol="sqs", Endpoint=self.plain_arn)
        self.admin_sqs = admin_sqs

    def depth(self, url: str) -> int:
        attributes = self.admin_sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_owner_publishes_and_the_subscriber_reads_through_sns(broker: Server) -> None:
    t = Topology(broker, "flow")
    learning = client(broker, LEARNING, "sns")
    learning.publish(TopicArn=t.topic, Message='{"passed": true}', MessageGroupId="m-1", MessageDeduplicationId="1")
    certification = client(broker, CERTIFICATION)
    assert certification.get_queue_url(QueueName="flow-q.fifo")["QueueUrl"] == t.queue
    (message,) = certification.receive_message(QueueUrl=t.queue, WaitTimeSeconds=2)["Messages"]
    assert message["Body"] == '{"passed": true}'
    certification.change_message_visibility(
        QueueUrl=t.queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=5
    )
    certification.delete_message_batch(
        QueueUrl=t.queue, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]
    )
    assert t.depth(t.queue) == 0
    # ListTopics and ListQueues show names to every principal (a service finds its topic's ARN so)
    assert t.topic in [x["TopicArn"] for x in client(broker, MEDIA, "sns").list_topics()["Topics"]]


def test_a_forged_publish_is_refused_and_delivers_nothing(broker: Server) -> None:
    t = Topology(broker, "forged")
    for key in (MEDIA, CERTIFICATION):
        sns = client(broker, key, "sns")
        code, status = refused(
            lambda sns=sns: sns.publish(
                TopicArn=t.topic, Message="{}", MessageGroupId="m-2", MessageDeduplicationId="forged"
            )
        )
        assert (code, status) == ("AuthorizationError", 403)
        code, status = refused(
            lambda sns=sns: sns.publish_batch(
                TopicArn=t.topic,
                PublishBatchRequestEntries=[{"Id": "1", "Message": "{}", "MessageGroupId": "m-2"}],
            )
        )
        assert (code, status) == ("AuthorizationError", 403)
    with pytest.raises(ClientError) as info:
        client(broker, MEDIA, "sns").publish(TopicArn=t.topic, Message="{}", MessageGroupId="g")
    assert f"User: {role('media')} is not authorized to perform: SNS:Publish" in str(info.value)
    assert t.depth(t.queue) == 0
    # ... and the forger cannot subscribe a queue of its own to read the topic either
    code, _ = refused(
        lambda: client(broker, MEDIA, "sns").subscribe(TopicArn=t.topic, Protocol="sqs", Endpoint=t.plain_arn)
    )
    assert code == "AuthorizationError"


def test_others_cannot_send_to_read_or_change_a_queue(broker: Server, sqs_query_factory: Any) -> None:
    t = Topology(broker, "guarded")
    client(broker, LEARNING, "sns").publish(
        TopicArn=t.topic, Message="kept", MessageGroupId="m-3", MessageDeduplicationId="kept"
    )
    media = client(broker, MEDIA)
    attempts = [
        lambda: media.send_message(QueueUrl=t.queue, MessageBody="x", MessageGroupId="g"),
        lambda: media.send_message_batch(
            QueueUrl=t.queue, Entries=[{"Id": "1", "MessageBody": "x", "MessageGroupId": "g"}]
        ),
        lambda: media.receive_message(QueueUrl=t.queue),
        lambda: media.purge_queue(QueueUrl=t.queue),
        lambda: media.delete_queue(QueueUrl=t.queue),
        lambda: media.set_queue_attributes(QueueUrl=t.queue, Attributes={"Policy": ""}),
        lambda: media.get_queue_url(QueueName="guarded-q.fifo"),
        lambda: media.create_queue(QueueName="intruder"),
        lambda: media.list_message_move_tasks(SourceArn=t.queue_arn),
    ]
    for attempt in attempts:
        assert refused(attempt) == ("AccessDenied", 403)
    # the subscriber may read its queue, not rewrite its policy, purge it or send to it
    certification = client(broker, CERTIFICATION)
    for attempt in (
        lambda: certification.set_queue_attributes(QueueUrl=t.queue, Attributes={"VisibilityTimeout": "1"}),
        lambda: certification.purge_queue(QueueUrl=t.queue),
        lambda: certification.send_message(QueueUrl=t.queue, MessageBody="x", MessageGroupId="g"),
    ):
        assert refused(attempt) == ("AccessDenied", 403)
    # the query protocol answers the same
    query = sqs_query_factory(broker, *MEDIA)
    assert refused(lambda: query.receive_message(QueueUrl=t.queue))[0] == "AccessDenied"
    # nothing changed: the one message is still there, the queue and its policy too
    assert t.depth(t.queue) == 1
    stored = t.admin_sqs.get_queue_attributes(QueueUrl=t.queue, AttributeNames=["Policy", "VisibilityTimeout"])
    assert json.loads(stored["Attributes"]["Policy"]) == t.queue_policy
    assert stored["Attributes"]["VisibilityTimeout"] == "30"
    assert "intruder" not in " ".join(t.admin_sqs.list_queues().get("QueueUrls", []))


def test_sns_delivers_only_where_the_queue_policy_names_the_topic(broker: Server) -> None:
    t = Topology(broker, "source")
    client(broker, ADMIN, "sns").publish(TopicArn=t.other_topic, Message="not for you")
    assert t.depth(t.plain_queue) == 0
    # once the queue's policy allows that topic as aws:SourceArn, SNS delivers
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": t.plain_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": t.other_topic}},
            }
        ],
    }
    t.admin_sqs.set_queue_attributes(QueueUrl=t.plain_queue, Attributes={"Policy": json.dumps(policy)})
    client(broker, ADMIN, "sns").publish(TopicArn=t.other_topic, Message="now it is")
    assert t.depth(t.plain_queue) == 1


def test_policies_round_trip_and_bad_documents_are_refused(broker: Server) -> None:
    t = Topology(broker, "documents")
    admin_sns = client(broker, ADMIN, "sns")
    stored = admin_sns.get_topic_attributes(TopicArn=t.topic)["Attributes"]["Policy"]
    assert json.loads(stored) == t.topic_policy
    assert client(broker, CERTIFICATION, "sns").get_topic_attributes(TopicArn=t.topic)["Attributes"]["Policy"] == stored
    bad = [
        "not json",
        "[]",
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "Publish"}]}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "sqs:*"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": []}),
    ]
    for document in bad:
        with pytest.raises(ClientError) as info:
            t.admin_sqs.set_queue_attributes(QueueUrl=t.queue, Attributes={"Policy": document})
        assert info.value.response["Error"]["Code"] == "InvalidAttributeValue"
        with pytest.raises(ClientError) as info:
            admin_sns.set_topic_attributes(TopicArn=t.topic, AttributeName="Policy", AttributeValue=document)
        assert info.value.response["Error"]["Code"] == "InvalidParameter"
        assert "Policy" in info.value.response["Error"]["Message"]
    assert json.loads(admin_sns.get_topic_attributes(TopicArn=t.topic)["Attributes"]["Policy"]) == t.topic_policy
    got = t.admin_sqs.get_queue_attributes(QueueUrl=t.queue, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert json.loads(got) == t.queue_policy


def test_an_explicit_deny_binds_the_owner_too(broker: Server) -> None:
    t = Topology(broker, "denied")
    policy = dict(t.queue_policy)
    policy["Statement"] = [
        *t.queue_policy["Statement"],
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:PurgeQueue", "Resource": t.queue_arn},
    ]
    t.admin_sqs.set_queue_attributes(QueueUrl=t.queue, Attributes={"Policy": json.dumps(policy)})
    assert refused(lambda: t.admin_sqs.purge_queue(QueueUrl=t.queue)) == ("AccessDenied", 403)
    t.admin_sqs.set_queue_attributes(QueueUrl=t.queue, Attributes={"Policy": json.dumps(t.queue_policy)})
    t.admin_sqs.purge_queue(QueueUrl=t.queue)


# -- the signature's body hash ---------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _signed(url: str, body: bytes, content_sha: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessage"}
    if content_sha is not None:
        headers["X-Amz-Content-SHA256"] = content_sha
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        botocore.auth.SigV4Auth(Credentials(*ADMIN), "sqs", REGION).add_auth(request)
    return dict(request.headers.items())


def test_unsigned_payload_and_a_body_not_matching_its_hash_are_refused(broker: Server) -> None:
    t = Topology(broker, "payload")
    url = broker.endpoint + "/"
    body = json.dumps({"QueueUrl": t.plain_queue, "MessageBody": "signed body"}).encode()
    # UNSIGNED-PAYLOAD: the signature holds (it covers the literal), the body is not covered: refused
    status, data = _post(url, body, _signed(url, body, "UNSIGNED-PAYLOAD"))
    assert status == 403 and b"UNSIGNED-PAYLOAD" in data
    # a signed hash, and another body sent with it
    other = json.dumps({"QueueUrl": t.plain_queue, "MessageBody": "forged body"}).encode()
    status, data = _post(url, other, _signed(url, body, hashlib.sha256(body).hexdigest()))
    assert status == 403 and b"signature we calculated does not match" in data
    # no hash header: the signature covers the body itself, so another body fails the signature
    status, data = _post(url, other, _signed(url, body, None))
    assert status == 403 and b"signature we calculated does not match" in data
    assert t.depth(t.plain_queue) == 0
    # the same request, honest, goes through
    status, data = _post(url, body, _signed(url, body, hashlib.sha256(body).hexdigest()))
    assert status == 200, data
    assert t.depth(t.plain_queue) == 1


# -- the credentials file ----------------------------------------------------------------------------------


def test_a_rotated_key_takes_effect_without_restarting(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    write_credentials(credentials, KEYS)
    server = start_server(tmp_path / "queue", "--auth", "strict", "--credentials", str(credentials))
    try:
        old = client(server, LEARNING, "sns")
        assert "Topics" in old.list_topics()
        new_key = ("AKIDLEARNING02", "learning-rotated-secret-0123")
        # the new key is added, the old one expires at once
        rotated = [k for k in KEYS if k["access_key_id"] != LEARNING[0]]
        rotated += [entry(new_key, role("learning")), entry(LEARNING, role("learning"), expires_at=time.time() - 1)]
        write_credentials(credentials, rotated)
        deadline = time.monotonic() + 10
        while True:
            try:
                old.list_topics()
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "InvalidClientTokenId"
                break
            assert time.monotonic() < deadline, "the old key still works"
            time.sleep(0.2)
        assert "Topics" in client(server, new_key, "sns").list_topics()
    finally:
        server.stop()


def test_a_credentials_file_others_can_read_is_refused_at_start(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    write_credentials(credentials, KEYS)
    os.chmod(credentials, 0o644)
    with pytest.raises(RuntimeError, match="exited"):
        start_server(tmp_path / "queue", "--auth", "strict", "--credentials", str(credentials))


def test_a_running_service_takes_up_its_rotated_key(tmp_path: Path) -> None:
    """`scte admin rotate-broker-key`'s path with a running service: the service's transport reads its key file
    again and keeps publishing, while the old key, once its grace is over, is refused."""
    import asyncio

    from scte.bus.transport import OutgoingMessage
    from scte.bus.transports.aws import AwsTransport
    from scte.deploy.broker_keys import ADMIN as OWNER
    from scte.deploy.broker_keys import broker_file, ensure_keys, identity_dir, rotate

    keys = ensure_keys(tmp_path, ["learning"], ACCOUNT)
    server = start_server(tmp_path / "queue", "--auth", "strict", "--credentials", str(broker_file(tmp_path)))
    try:
        owner = (keys[OWNER].access_key_id, keys[OWNER].secret_access_key)
        topic = client(server, owner, "sns").create_topic(Name="jobs")["TopicArn"]
        statement = {"Effect": "Allow", "Principal": {"AWS": role("learning")}, "Action": "sns:Publish"}
        policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        client(server, owner, "sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=policy)
        old = (keys["learning"].access_key_id, keys["learning"].secret_access_key)

        async def publish_twice() -> None:
            transport = AwsTransport(
                endpoint_url=server.endpoint, region=REGION, credentials_file=identity_dir(tmp_path) / "learning.json"
            )
            try:
                await transport.publish("jobs", [OutgoingMessage('{"n": 1}')])
                rotate(tmp_path, "learning", ACCOUNT, grace=0)
                await asyncio.sleep(2.5)  # both sides look at their files at most once a second
                await transport.publish("jobs", [OutgoingMessage('{"n": 2}')])
            finally:
                await transport.close()

        asyncio.run(publish_twice())
        code, status = refused(lambda: client(server, old, "sns").publish(TopicArn=topic, Message="old key"))
        assert (code, status) == ("InvalidClientTokenId", 403)
    finally:
        server.stop()
