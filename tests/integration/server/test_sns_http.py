"""HTTP subscriptions against a real local HTTP endpoint: the confirmation handshake (through the
SubscribeURL the server sends, and through ConfirmSubscription), notifications with SNS's headers, raw
delivery, retries of failed posts, and unsubscribing through the UnsubscribeURL."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from server_harness import CREDENTIALS, REGION, Server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Endpoint:
    """A local HTTP server that records every POST; `statuses[path]` lists the codes to answer first."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str, kind: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.received
                if r.path == path and (kind is None or r.headers.get("x-amz-sns-message-type") == kind)
            ]

    def wait(self, path: str, kind: str, n: int = 1, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.posts(path, kind)
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{n} {kind} posts to {path} expected, got {self.posts(path)}")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    state: dict[str, Endpoint] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            ep = state["ep"]
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode("utf-8")
            with ep.lock:
                ep.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                pending = ep.statuses.get(self.path) or []
                status = pending.pop(0) if pending else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["ep"] = Endpoint(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state["ep"]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def sns(server: Server) -> Any:
    return boto3.client("sns", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def _path() -> str:
    return f"/hook-{uuid.uuid4().hex[:8]}"


def _subscription(sns: Any, topic: str, endpoint: str) -> dict[str, str]:
    (sub,) = [s for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] if s["Endpoint"] == endpoint]
    return dict(sub)


def test_handshake_through_subscribe_url_then_notifications(sns: Any, endpoint: Endpoint, server: Server) -> None:
    topic = sns.create_topic(Name=f"http-{uuid.uuid4().hex[:8]}")["TopicArn"]
    path = _path()
    url = endpoint.url + path
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == "pending confirmation"
    assert _subscription(sns, topic, url)["SubscriptionArn"] == "PendingConfirmation"

    (confirmation,) = endpoint.wait(path, "SubscriptionConfirmation")
    doc = confirmation.json
    assert doc["Type"] == "SubscriptionConfirmation"
    assert doc["TopicArn"] == topic and doc["Token"]
    assert confirmation.headers["x-amz-sns-topic-arn"] == topic
    assert doc["SubscribeURL"].startswith(server.endpoint + "/?Action=ConfirmSubscription")

    sns.publish(TopicArn=topic, Message="before confirmation")  # not delivered: pending
    status, body = _get(doc["SubscribeURL"])  # what a real endpoint does: GET the SubscribeURL
    assert status == 200 and "<ConfirmSubscriptionResponse" in body and "<SubscriptionArn>" in body
    sub_arn = _subscription(sns, topic, url)["SubscriptionArn"]
    assert sub_arn.startswith(topic + ":")
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])  # http subscriptions show their delivery policy

    published = sns.publish(
        TopicArn=topic,
        Message="hello over http",
        Subject="greeting",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    (note,) = endpoint.wait(path, "Notification")
    assert note.headers["x-amz-sns-message-id"] == published["MessageId"]
    assert note.headers["x-amz-sns-topic-arn"] == topic
    assert note.headers["x-amz-sns-subscription-arn"] == sub_arn
    envelope = note.json
    assert envelope["Type"] == "Notification"
    assert envelope["Message"] == "hello over http" and envelope["Subject"] == "greeting"
    assert envelope["MessageAttributes"] == {"kind": {"Type": "String", "Value": "greeting"}}
    assert envelope["UnsubscribeURL"].startswith(server.endpoint + "/?Action=Unsubscribe")
    assert [r.json.get("Message") for r in endpoint.posts(path, "Notification")] == ["hello over http"]

    # The UnsubscribeURL (GET, unsigned) ends the subscription.
    status, body = _get(envelope["UnsubscribeURL"])
    assert status == 200 and "<UnsubscribeResponse" in body
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    sns.publish(TopicArn=topic, Message="after unsubscribe")
    time.sleep(0.3)
    assert len(endpoint.posts(path, "Notification")) == 1


def test_confirm_subscription_action_with_the_token_and_raw_delivery(sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name=f"http-{uuid.uuid4().hex[:8]}")["TopicArn"]
    path = _path()
    url = endpoint.url + path
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, Attributes={"RawMessageDelivery": "true"})
    (confirmation,) = endpoint.wait(path, "SubscriptionConfirmation")
    sub_arn = sns.confirm_subscription(
        TopicArn=topic, Token=confirmation.json["Token"], AuthenticateOnUnsubscribe="true"
    )["SubscriptionArn"]
    assert sub_arn == _subscription(sns, topic, url)["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]
    assert attrs["ConfirmationWasAuthenticated"] == "true"
    assert attrs["RawMessageDelivery"] == "true"

    sns.publish(TopicArn=topic, Message='{"raw": true}')
    (note,) = endpoint.wait(path, "Notification")
    assert note.body == '{"raw": true}'  # raw: the message itself, no envelope


def test_failed_posts_are_retried_until_the_endpoint_answers(sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name=f"http-{uuid.uuid4().hex[:8]}")["TopicArn"]
    path = _path()
    url = endpoint.url + path
    policy = json.dumps({"healthyRetryPolicy": {"numRetries": 3, "minDelayTarget": 1, "maxDelayTarget": 1}})
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, Attributes={"DeliveryPolicy": policy})
    (confirmation,) = endpoint.wait(path, "SubscriptionConfirmation")
    _get(confirmation.json["SubscribeURL"])

    with endpoint.lock:
        endpoint.statuses[path] = [500, 503]  # two failures, then 200
    published = sns.publish(TopicArn=topic, Message="retry me")
    posts = endpoint.wait(path, "Notification", n=3)
    assert len(posts) == 3
    assert {p.headers["x-amz-sns-message-id"] for p in posts} == {published["MessageId"]}
    time.sleep(1.5)
    assert len(endpoint.posts(path, "Notification")) == 3  # delivered once it succeeded: no more posts


def test_a_client_error_is_not_retried(sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name=f"http-{uuid.uuid4().hex[:8]}")["TopicArn"]
    path = _path()
    url = endpoint.url + path
    policy = json.dumps({"healthyRetryPolicy": {"numRetries": 3, "minDelayTarget": 1}})
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, Attributes={"DeliveryPolicy": policy})
    (confirmation,) = endpoint.wait(path, "SubscriptionConfirmation")
    _get(confirmation.json["SubscribeURL"])
    with endpoint.lock:
        endpoint.statuses[path] = [404]
    sns.publish(TopicArn=topic, Message="gone")
    endpoint.wait(path, "Notification")
    time.sleep(1.5)
    assert len(endpoint.posts(path, "Notification")) == 1


def test_a_wrong_token_is_refused(sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name=f"http-{uuid.uuid4().hex[:8]}")["TopicArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.confirm_subscription(TopicArn=topic, Token="not-a-token")
