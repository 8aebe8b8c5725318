"""SigV4 verification (`--auth strict`) and regions taken from the request's credential scope."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.parse
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
from server_harness import CREDENTIALS, REGION, Server, start_server

KEY, SECRET = "AKIDSTRICT", "s3cr3t-key"
OTHER_KEY, OTHER_SECRET = "AKIDOTHER", "another-secret"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("strict"),
        "--auth",
        "strict",
        "--access-key",
        f"{KEY}:{SECRET}",
        "--access-key",
        f"{OTHER_KEY}:{OTHER_SECRET}",
    )
    yield server
    server.stop()


def client(server: Server, key: str, secret: str, *, region: str = REGION, service: str = "sqs", **kw: Any) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        **kw,
    )


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def raw(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def signed_headers(
    url: str, body: bytes, headers: dict[str, str], secret: str, when: datetime.datetime
) -> dict[str, str]:
    """Headers of a request signed by botocore as if it were `when`."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(Credentials(KEY, secret), "sqs", REGION).add_auth(request)
    return dict(request.headers.items())


def test_right_credentials_work_on_both_protocols_and_keys(strict: Server, sqs_query_factory: Any) -> None:
    sqs = client(strict, KEY, SECRET)
    url = sqs.create_queue(QueueName="signed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="héllo / ünïcode & more")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "héllo / ünïcode & more"
    assert client(strict, OTHER_KEY, OTHER_SECRET).list_queues()["QueueUrls"] == [url]  # a second key
    query = sqs_query_factory(strict, KEY, SECRET)
    query.send_message(
        QueueUrl=url,
        MessageBody="over the query protocol",
        MessageAttributes={"a": {"DataType": "String", "StringValue": "x y+z"}},
    )
    assert code_of(lambda: sqs_query_factory(strict, KEY, "wrong").list_queues()) == "SignatureDoesNotMatch"


def test_wrong_credentials_are_refused(strict: Server) -> None:
    assert code_of(lambda: client(strict, KEY, "wrong").list_queues()) == "SignatureDoesNotMatch"
    assert code_of(lambda: client(strict, "AKIDUNKNOWN", SECRET).list_queues()) == "InvalidClientTokenId"
    with pytest.raises(ClientError) as info:
        client(strict, KEY, "wrong").create_queue(QueueName="nope")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "QueueUrls" not in client(strict, KEY, SECRET).list_queues(QueueNamePrefix="nope")


def test_missing_and_tampered_signatures(strict: Server) -> None:
    body = json.dumps({}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}
    status, resp_headers, data = raw(strict.endpoint + "/", body, headers)
    assert status == 403
    assert json.loads(data)["__type"].endswith("MissingAuthenticationTokenException")
    assert resp_headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    # Query protocol: the XML error.
    status, _, data = raw(
        strict.endpoint + "/",
        b"Action=ListQueues&Version=2012-11-05",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 403 and b"<Code>MissingAuthenticationToken</Code>" in data
    # Malformed Authorization header.
    status, resp_headers, _ = raw(strict.endpoint + "/", body, {**headers, "Authorization": "AWS4-HMAC-SHA256 junk"})
    assert status == 403 and resp_headers["x-amzn-query-error"].startswith("IncompleteSignature;")
    # A body changed after signing.
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    good = signed_headers(strict.endpoint + "/", body, headers, SECRET, now)
    assert raw(strict.endpoint + "/", body, good)[0] == 200
    status, resp_headers, _ = raw(strict.endpoint + "/", b'{"QueueNamePrefix": "x"}', good)
    assert status == 403 and resp_headers["x-amzn-query-error"] == "SignatureDoesNotMatch;Sender"


def test_stale_date_is_request_expired(strict: Server) -> None:
    body = b"{}"
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}
    stale = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    status, resp_headers, data = raw(
        strict.endpoint + "/", body, signed_headers(strict.endpoint + "/", body, headers, SECRET, stale)
    )
    assert status == 403
    assert resp_headers["x-amzn-query-error"] == "RequestExpired;Sender"
    assert "Signature expired" in json.loads(data)["message"]
    recent = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    assert (
        raw(strict.endpoint + "/", body, signed_headers(strict.endpoint + "/", body, headers, SECRET, recent))[0] == 200
    )


def test_presigned_url(strict: Server) -> None:
    url = f"{strict.endpoint}/?Action=ListQueues&Version=2012-11-05"
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4QueryAuth(Credentials(KEY, SECRET), "sqs", REGION, expires=60).add_auth(request)
    status, _, data = raw(request.url, b"", {}, method="GET")
    assert status == 200 and b"<ListQueuesResponse" in data
    status, _, data = raw(request.url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), b"", {}, method="GET")
    assert status == 403 and b"SignatureDoesNotMatch" in data


class _Hook:
    """A local HTTP endpoint recording the bodies POSTed to it (SNS's SubscriptionConfirmation)."""

    def __init__(self) -> None:
        import http.server
        import threading

        bodies: list[dict[str, Any]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + 15
        while not self.bodies:
            assert time.monotonic() < deadline, "no SubscriptionConfirmation posted"
            time.sleep(0.02)
        return self.bodies[0]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sns_delivery_policy(queue_arn: str, topic_arn: str) -> str:
    """What a queue needs, in strict mode as on AWS, before SNS delivers to it."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_subscribe_and_unsubscribe_urls_work_unsigned_in_strict_mode(strict: Server) -> None:
    """SNS's SubscribeURL and UnsubscribeURL are capability URLs (their token or subscription ARN is the
    credential): unsigned GETs of exactly those two actions are served; everything else still needs SigV4."""
    region = "us-west-2"  # not the default: the links are served in the region of the ARN they carry
    sns = client(strict, KEY, SECRET, region=region, service="sns")
    sqs = client(strict, KEY, SECRET, region=region)
    topic = sns.create_topic(Name="capability-links")["TopicArn"]
    hook = _Hook()
    try:
        assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=hook.url)["SubscriptionArn"] == (
            "pending confirmation"
        )
        confirmation = hook.wait()
    finally:
        hook.close()
    subscribe_url = confirmation["SubscribeURL"]
    assert subscribe_url.startswith(strict.endpoint + "/?Action=ConfirmSubscription")
    # Not a capability link: the same action as an unsigned POST, or with a junk token in another action.
    form = urllib.parse.urlsplit(subscribe_url).query.encode()
    status, _, data = raw(strict.endpoint + "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"MissingAuthenticationToken" in data
    status, _, data = raw(f"{strict.endpoint}/?Action=ListTopics&Version=2010-03-31", b"", {}, method="GET")
    assert status == 403 and b"MissingAuthenticationToken" in data
    # A wrong token is the action's own error, not an authentication failure.
    status, _, data = raw(subscribe_url.replace("Token=", "Token=0"), b"", {}, method="GET")
    assert status == 400 and b"<Code>InvalidParameter</Code>" in data
    status, _, data = raw(subscribe_url, b"", {}, method="GET")
    assert status == 200 and b"<ConfirmSubscriptionResponse" in data
    (sub,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sub["SubscriptionArn"].startswith(topic + ":")

    queue = sqs.create_queue(QueueName="capability-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": sns_delivery_policy(queue_arn, topic)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message="hello")
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    unsubscribe_url = json.loads(message["Body"])["UnsubscribeURL"]
    status, _, data = raw(unsubscribe_url, b"", {}, method="GET")
    assert status == 200 and b"<UnsubscribeResponse" in data
    remaining = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Protocol"] for s in remaining] == ["http"]


def test_queues_are_isolated_per_region(server: Server) -> None:
    west1 = client(server, **_creds(), region="us-west-1")
    west2 = client(server, **_creds(), region="us-west-2")
    url1 = west1.create_queue(QueueName="regional")["QueueUrl"]
    url2 = west2.create_queue(QueueName="regional-two")["QueueUrl"]
    assert url1 in west1.list_queues()["QueueUrls"] and url2 not in west1.list_queues()["QueueUrls"]
    assert url2 in west2.list_queues()["QueueUrls"] and url1 not in west2.list_queues()["QueueUrls"]
    arn = west2.get_queue_attributes(QueueUrl=url2, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == "arn:aws:sqs:us-west-2:123456789012:regional-two"
    west2.send_message(QueueUrl=url2, MessageBody="west")
    # A queue URL names its region (issue 15): the old form, without it, is resolved in the request's region.
    assert url2.endswith("/queue/us-west-2/123456789012/regional-two")
    old_form = url2.replace("/queue/us-west-2", "")
    assert (
        code_of(lambda: west1.send_message(QueueUrl=old_form, MessageBody="x"))
        == "AWS.SimpleQueueService.NonExistentQueue"
    )
    assert (server.data / "us-west-2" / "broker.db").exists()
    assert (server.data / "broker.db").exists()  # the default region keeps its path
    sns = client(server, **_creds(), region="us-west-2", service="sns")
    topic = sns.create_topic(Name="regional-topic")["TopicArn"]
    assert topic.startswith("arn:aws:sns:us-west-2:")


def _creds() -> dict[str, str]:
    return {"key": CREDENTIALS["aws_access_key_id"], "secret": CREDENTIALS["aws_secret_access_key"]}


def test_regions_survive_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        west = client(server, **_creds(), region="eu-west-1")
        url = west.create_queue(QueueName="kept")["QueueUrl"]
        west.send_message(QueueUrl=url, MessageBody="m")
    finally:
        server.stop()
    again = start_server(tmp_path / "data")
    try:
        west = client(again, **_creds(), region="eu-west-1")
        (url,) = west.list_queues()["QueueUrls"]
        assert west.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "m"
        assert "QueueUrls" not in client(again, **_creds()).list_queues()
    finally:
        again.stop()


def test_keys_from_the_environment() -> None:
    from scte.queue.server.config import ServerConfig

    env = {"SCTE_QUEUE_AUTH": "strict", "SCTE_QUEUE_ACCESS_KEYS": "A1:s1, A2:s:2"}
    config = ServerConfig.from_env(env)
    assert config.auth == "strict" and dict(config.access_keys) == {"A1": "s1", "A2": "s:2"}
    assert "s1" not in repr(config)
    with pytest.raises(ValueError, match="access-key"):
        ServerConfig.from_env({"SCTE_QUEUE_AUTH": "strict"})
