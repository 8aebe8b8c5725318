"""Filter policies over the wire: the unit table's cases (both scopes, matching and not) through boto3
`sns` and `sqs` clients against `scte queue serve`, and the policies SNS refuses, refused the same way.

Each case gets its own topic and queue: subscribe with the policy and scope, publish the case's message
(attributes for `MessageAttributes`, the JSON body for `MessageBody`), and the queue has the message
exactly when the case says it matches.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from server_harness import CREDENTIALS, REGION, Server


def _unit_table() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "unit" / "test_filter_policy.py"
    spec = importlib.util.spec_from_file_location("scte_unit_filter_policy_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TABLE = _unit_table()
CASES: list[tuple[str, dict[str, Any], str, Any, bool]] = _TABLE.CASES
INVALID: list[tuple[str, str, str, str]] = _TABLE.INVALID

# Cases whose message SNS itself refuses at Publish, before any filtering: they cannot travel the wire.
_NOT_PUBLISHABLE = {c[0] for c in CASES if c[2] == "MessageBody" and c[3] == ""}


@pytest.fixture(scope="module")
def sns(server: Server) -> Any:
    return boto3.client("sns", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_the_table_is_large_and_covers_both_scopes_and_outcomes() -> None:
    wire = [c for c in CASES if c[0] not in _NOT_PUBLISHABLE]
    assert len(wire) >= 40
    for scope in ("MessageAttributes", "MessageBody"):
        assert {c[4] for c in wire if c[2] == scope} == {True, False}


@pytest.mark.parametrize(
    ("policy", "scope", "message", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES if c[0] not in _NOT_PUBLISHABLE],
)
def test_filter_policy_case_over_the_wire(
    sns: Any, sqs: Any, policy: dict[str, Any], scope: str, message: Any, expected: bool
) -> None:
    name = f"f-{uuid.uuid4().hex[:12]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    url, queue_arn = _queue(sqs, name)
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": scope, "RawMessageDelivery": "true"},
    )
    if scope == "MessageAttributes":
        published = sns.publish(TopicArn=topic, Message="payload", MessageAttributes=message)
        body = "payload"
    else:
        body = message if isinstance(message, str) else json.dumps(message)
        published = sns.publish(TopicArn=topic, Message=body)
    assert published["MessageId"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in received] == ([body] if expected else [])


@pytest.mark.parametrize(("policy", "scope", "message"), [pytest.param(*c[1:], id=c[0]) for c in INVALID])
def test_invalid_policy_refused_at_subscribe_and_set(
    sns: Any, sqs: Any, server: Server, policy: str, scope: str, message: str
) -> None:
    name = f"i-{uuid.uuid4().hex[:12]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    _url, queue_arn = _queue(sqs, name)
    with pytest.raises(ClientError) as refused:
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"FilterPolicy": policy, "FilterPolicyScope": scope},
        )
    error = refused.value.response["Error"]
    assert error["Message"].startswith(message)
    assert (error["Code"], error["Type"]) == ("InvalidParameter", "Sender")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []  # nothing half-made

    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    if scope in ("MessageAttributes", "MessageBody"):
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope", AttributeValue=scope)
        name, value = "FilterPolicy", policy
    else:  # the policy is fine, the scope is what is refused
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=policy)
        name, value = "FilterPolicyScope", scope
    with pytest.raises(ClientError) as refused_set:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName=name, AttributeValue=value)
    assert refused_set.value.response["Error"]["Message"].startswith(message)
    attributes = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attributes.get(name) != value  # unchanged


def test_scope_switch_over_the_wire(sns: Any, sqs: Any) -> None:
    """The same policy filters attributes or the body depending on FilterPolicyScope, changed in place."""
    name = f"s-{uuid.uuid4().hex[:12]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    url, queue_arn = _queue(sqs, name)
    sub = sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": '{"kind": ["a"]}', "RawMessageDelivery": "true"},
    )["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["FilterPolicyScope"] == "MessageAttributes"
    by_attr = {"kind": {"DataType": "String", "StringValue": "a"}}
    sns.publish(TopicArn=topic, Message='{"kind": "b"}', MessageAttributes=by_attr)  # matches
    sns.publish(TopicArn=topic, Message='{"kind": "a"}')  # does not
    sns.set_subscription_attributes(
        SubscriptionArn=sub, AttributeName="FilterPolicyScope", AttributeValue="MessageBody"
    )
    sns.publish(TopicArn=topic, Message='{"kind": "b"}', MessageAttributes=by_attr)  # does not
    sns.publish(TopicArn=topic, Message='{"kind": "a"}')  # matches
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert sorted(bodies) == ['{"kind": "a"}', '{"kind": "b"}']
    assert len(bodies) == 2


def test_number_beyond_a_billion_is_snss_internal_error(sns: Any, sqs: Any) -> None:
    name = f"n-{uuid.uuid4().hex[:12]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    _url, queue_arn = _queue(sqs, name)
    with pytest.raises(ClientError) as refused:
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"FilterPolicy": '{"n": [1000000001]}'}
        )
    assert refused.value.response["Error"]["Code"] == "InternalError"
    assert refused.value.response["Error"]["Type"] == "Receiver"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
