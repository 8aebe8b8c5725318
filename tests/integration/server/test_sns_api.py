"""The SNS API over the wire with boto3 `sns` and `sqs` clients against `scte queue serve`: fan-out,
enveloped and raw delivery, FIFO order per group through a topic, every topic/subscription/tag action,
SNS errors, and how SNS and SQS requests share the port."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from server_harness import ACCOUNT, CREDENTIALS, REGION, Server


@pytest.fixture(scope="module")
def sns(server: Server) -> Any:
    return boto3.client("sns", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _queue(sqs: Any, name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _drain(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"], **kwargs
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["Error"].get("Type", ""), response["ResponseMetadata"]["HTTPStatusCode"]


# -- fan-out and delivery formats ----------------------------------------------------------------------------


def test_fan_out_to_several_queues_enveloped(sns: Any, sqs: Any, server: Server) -> None:
    topic = sns.create_topic(Name=_name("orders"))["TopicArn"]
    queues = [_queue(sqs, _name(f"fan{i}")) for i in range(4)]
    subs = [sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)["SubscriptionArn"] for _u, arn in queues]
    assert len(set(subs)) == 4 and all(s.startswith(topic + ":") for s in subs)

    published = sns.publish(
        TopicArn=topic,
        Message="order 42 paid",
        Subject="paid",
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": "order.paid"},
            "amount": {"DataType": "Number", "StringValue": "12.5"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
    )
    for (url, _arn), sub in zip(queues, subs, strict=True):
        (message,) = _drain(sqs, url)
        envelope = json.loads(message["Body"])
        assert envelope["Type"] == "Notification"
        assert envelope["MessageId"] == published["MessageId"]
        assert envelope["TopicArn"] == topic
        assert envelope["Subject"] == "paid" and envelope["Message"] == "order 42 paid"
        assert envelope["Timestamp"].endswith("Z")
        assert envelope["SignatureVersion"] == "1" and envelope["Signature"] and envelope["SigningCertURL"]
        assert envelope["MessageAttributes"] == {
            "type": {"Type": "String", "Value": "order.paid"},
            "amount": {"Type": "Number", "Value": "12.5"},
            "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01\xff").decode()},
        }
        unsubscribe = urllib.parse.urlsplit(envelope["UnsubscribeURL"])
        assert f"{unsubscribe.scheme}://{unsubscribe.netloc}" == server.endpoint
        assert urllib.parse.parse_qs(unsubscribe.query) == {"Action": ["Unsubscribe"], "SubscriptionArn": [sub]}
        assert "MessageAttributes" not in message  # enveloped: the attributes travel in the body


def test_raw_delivery_keeps_body_and_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("raw"))["TopicArn"]
    raw_url, raw_arn = _queue(sqs, _name("raw"))
    env_url, env_arn = _queue(sqs, _name("env"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"})
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"]
    attributes = {
        "s": {"DataType": "String", "StringValue": "text"},
        "n": {"DataType": "Number", "StringValue": "-3.25"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        "custom": {"DataType": "String.custom", "StringValue": "x"},
    }
    sns.publish(TopicArn=topic, Message='{"raw": 1}', MessageAttributes=attributes)
    (raw,) = _drain(sqs, raw_url)
    assert raw["Body"] == '{"raw": 1}'
    assert raw["MessageAttributes"] == {
        "s": {"DataType": "String", "StringValue": "text"},
        "n": {"DataType": "Number", "StringValue": "-3.25"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        "custom": {"DataType": "String.custom", "StringValue": "x"},
    }
    (enveloped,) = _drain(sqs, env_url)
    assert json.loads(enveloped["Body"])["Message"] == '{"raw": 1}'

    # Switching RawMessageDelivery on in place changes the next delivery.
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=topic, Message="now raw")
    assert [m["Body"] for m in _drain(sqs, env_url)] == ["now raw"]


def test_publish_batch_fans_out_each_entry_and_reports_failures(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("batch"))["TopicArn"]
    urls = []
    for i in range(3):
        url, arn = _queue(sqs, _name(f"b{i}"))
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    result = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "one", "Message": "m1", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
            {"Id": "two", "Message": "m2", "Subject": "s"},
            {"Id": "bad", "Message": "m3", "MessageAttributes": {"k": {"DataType": "Number", "StringValue": "x"}}},
        ],
    )
    assert [s["Id"] for s in result["Successful"]] == ["one", "two"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [("bad", "InvalidParameter", True)]
    for url in urls:
        got = _drain(sqs, url)
        assert sorted(m["Body"] for m in got) == ["m1", "m2"]
        (m1,) = [m for m in got if m["Body"] == "m1"]
        assert m1["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}

    with pytest.raises(ClientError) as too_many:
        sns.publish_batch(
            TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(i), "Message": "x"} for i in range(11)]
        )
    assert _error(too_many)[0] == "TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as same_ids:
        sns.publish_batch(
            TopicArn=topic, PublishBatchRequestEntries=[{"Id": "a", "Message": "x"}, {"Id": "a", "Message": "y"}]
        )
    assert _error(same_ids)[0] == "BatchEntryIdsNotDistinct"


def test_message_structure_json_picks_the_sqs_entry(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("structure"))["TopicArn"]
    url, arn = _queue(sqs, _name("structure"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, MessageStructure="json", Message=json.dumps({"default": "d", "sqs": "for sqs"}))
    assert [m["Body"] for m in _drain(sqs, url)] == ["for sqs"]
    with pytest.raises(ClientError) as no_default:
        sns.publish(TopicArn=topic, MessageStructure="json", Message=json.dumps({"sqs": "x"}))
    assert _error(no_default)[0] == "InvalidParameter"


# -- FIFO ----------------------------------------------------------------------------------------------------


def test_fifo_topic_keeps_order_per_group_into_fifo_queues(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(
        Name=_name("fifo") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    queues = []
    for i in range(2):
        url, arn = _queue(sqs, _name(f"fq{i}") + ".fifo", {"FifoQueue": "true"})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        queues.append(url)
    sent: dict[str, list[str]] = {"g1": [], "g2": [], "g3": []}
    sequences: list[int] = []
    for i in range(12):
        group = f"g{i % 3 + 1}"
        body = f"{group}-{i}"
        if i % 4 == 3:  # every fourth through PublishBatch, two entries of the same group
            second = f"{group}-{i}b"
            result = sns.publish_batch(
                TopicArn=topic,
                PublishBatchRequestEntries=[
                    {"Id": "a", "Message": body, "MessageGroupId": group},
                    {"Id": "b", "Message": second, "MessageGroupId": group},
                ],
            )
            assert not result.get("Failed")
            sequences += [int(s["SequenceNumber"]) for s in result["Successful"]]
            sent[group] += [body, second]
        else:
            result = sns.publish(TopicArn=topic, Message=body, MessageGroupId=group)
            sequences.append(int(result["SequenceNumber"]))
            sent[group].append(body)
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)

    # A duplicate (content-based deduplication) is acknowledged with the first MessageId and not delivered.
    first = sns.publish(TopicArn=topic, Message="dup", MessageGroupId="g1")
    again = sns.publish(TopicArn=topic, Message="dup", MessageGroupId="g1")
    assert again["MessageId"] == first["MessageId"]
    sent["g1"].append("dup")

    for url in queues:
        got = _drain(sqs, url)
        per_group: dict[str, list[str]] = {}
        for m in got:
            per_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
        assert per_group == sent


def test_fifo_topic_rules(sns: Any, sqs: Any) -> None:
    fifo = sns.create_topic(Name=_name("rules") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    standard = sns.create_topic(Name=_name("std"))["TopicArn"]
    with pytest.raises(ClientError) as no_group:
        sns.publish(TopicArn=fifo, Message="x", MessageDeduplicationId="d")
    assert _error(no_group)[:2] == ("InvalidParameter", "Sender")
    with pytest.raises(ClientError) as no_dedup:
        sns.publish(TopicArn=fifo, Message="x", MessageGroupId="g")  # no ContentBasedDeduplication
    assert _error(no_dedup)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as dedup_on_standard:
        sns.publish(TopicArn=standard, Message="x", MessageDeduplicationId="d")
    assert _error(dedup_on_standard)[0] == "InvalidParameter"
    _url, fifo_queue = _queue(sqs, _name("fq") + ".fifo", {"FifoQueue": "true"})
    with pytest.raises(ClientError) as fifo_to_standard:
        sns.subscribe(TopicArn=standard, Protocol="sqs", Endpoint=fifo_queue)
    assert _error(fifo_to_standard)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as bad_name:
        sns.create_topic(Name="no-suffix", Attributes={"FifoTopic": "true"})
    assert _error(bad_name)[0] == "InvalidParameter"


# -- topics, subscriptions, tags -----------------------------------------------------------------------------


def test_topic_life_cycle_attributes_and_paging(sns: Any) -> None:
    prefix = _name("page")
    created = [sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(105)]
    assert sns.create_topic(Name=f"{prefix}-000")["TopicArn"] == created[0]  # idempotent
    listed: list[str] = []
    pages = 0
    kwargs: dict[str, str] = {}
    while True:
        page = sns.list_topics(**kwargs)
        pages += 1
        listed += [t["TopicArn"] for t in page["Topics"]]
        if "NextToken" not in page:
            break
        kwargs = {"NextToken": page["NextToken"]}
    assert pages >= 2
    assert [a for a in listed if a in set(created)] == created

    topic = created[0]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attrs["TopicArn"] == topic and attrs["Owner"] == ACCOUNT
    assert json.loads(attrs["Policy"])["Statement"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="Orders & <co>")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "Orders & <co>"

    sns.add_permission(TopicArn=topic, Label="share", AWSAccountId=["111122223333"], ActionName=["Publish"])
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert any(s["Sid"] == "share" for s in policy["Statement"])
    sns.remove_permission(TopicArn=topic, Label="share")
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert not any(s["Sid"] == "share" for s in policy["Statement"])

    for arn in created:
        sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=created[0])  # idempotent
    remaining = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    assert not remaining & set(created)


def test_tags(sns: Any) -> None:
    topic = sns.create_topic(Name=_name("tags"), Tags=[{"Key": "team", "Value": "search"}])["TopicArn"]
    sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "core"}])
    tags = sns.list_tags_for_resource(ResourceArn=topic)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "core", "env": "prod"}
    sns.untag_resource(ResourceArn=topic, TagKeys=["team", "absent"])
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as missing:
        sns.list_tags_for_resource(ResourceArn=topic + "-nope")
    assert _error(missing) == ("ResourceNotFound", "Sender", 404)


def test_subscriptions_listing_attributes_and_unsubscribe(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name=_name("subs"))["TopicArn"]
    other = sns.create_topic(Name=_name("other"))["TopicArn"]
    arns = [_queue(sqs, _name(f"s{i}"))[1] for i in range(3)]
    subs = [sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=a)["SubscriptionArn"] for a in arns]
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arns[0])["SubscriptionArn"] == subs[0]
    other_sub = sns.subscribe(TopicArn=other, Protocol="sqs", Endpoint=arns[0])["SubscriptionArn"]

    by_topic = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in by_topic] == subs
    assert by_topic[0] == {
        "SubscriptionArn": subs[0],
        "Owner": ACCOUNT,
        "Protocol": "sqs",
        "Endpoint": arns[0],
        "TopicArn": topic,
    }
    everything = [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    assert set(subs) | {other_sub} <= set(everything)

    dlq = _queue(sqs, _name("dlq"))[1]
    redrive = json.dumps({"deadLetterTargetArn": dlq})
    for name, value in (
        ("RawMessageDelivery", "true"),
        ("FilterPolicy", '{"k": ["v"]}'),
        ("FilterPolicyScope", "MessageBody"),
        ("RedrivePolicy", redrive),
    ):
        sns.set_subscription_attributes(SubscriptionArn=subs[1], AttributeName=name, AttributeValue=value)
    attrs = sns.get_subscription_attributes(SubscriptionArn=subs[1])["Attributes"]
    assert attrs["SubscriptionArn"] == subs[1] and attrs["TopicArn"] == topic and attrs["Protocol"] == "sqs"
    assert attrs["RawMessageDelivery"] == "true"
    assert attrs["FilterPolicy"] == '{"k": ["v"]}' and attrs["FilterPolicyScope"] == "MessageBody"
    assert attrs["RedrivePolicy"] == redrive
    assert attrs["PendingConfirmation"] == "false"
    with pytest.raises(ClientError) as bad_name:
        sns.set_subscription_attributes(SubscriptionArn=subs[1], AttributeName="Nope", AttributeValue="x")
    assert _error(bad_name)[0] == "InvalidParameter"

    sns.unsubscribe(SubscriptionArn=subs[1])
    sns.unsubscribe(SubscriptionArn=subs[1])  # idempotent
    assert [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == [
        subs[0],
        subs[2],
    ]
    with pytest.raises(ClientError) as gone:
        sns.get_subscription_attributes(SubscriptionArn=subs[1])
    assert _error(gone) == ("NotFound", "Sender", 404)

    sns.delete_topic(TopicArn=topic)  # takes its subscriptions with it
    remaining = {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]}
    assert not remaining & set(subs) and other_sub in remaining


def test_subscription_paging(sns: Any) -> None:
    topic = sns.create_topic(Name=_name("subpage"))["TopicArn"]
    queue_arns = [f"arn:aws:sqs:{REGION}:{ACCOUNT}:{_name('absent')}" for _ in range(120)]
    subs = [sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=a)["SubscriptionArn"] for a in queue_arns]
    first = sns.list_subscriptions_by_topic(TopicArn=topic)
    assert len(first["Subscriptions"]) == 100 and first["NextToken"]
    second = sns.list_subscriptions_by_topic(TopicArn=topic, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert [s["SubscriptionArn"] for s in first["Subscriptions"] + second["Subscriptions"]] == subs
    sns.delete_topic(TopicArn=topic)


# -- errors --------------------------------------------------------------------------------------------------


def test_sns_errors_have_code_type_and_status(sns: Any, sqs: Any) -> None:
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{_name('missing')}"
    with pytest.raises(ClientError) as not_found:
        sns.get_topic_attributes(TopicArn=missing)
    assert _error(not_found) == ("NotFound", "Sender", 404)
    assert not_found.value.response["Error"]["Message"] == "Topic does not exist"
    assert isinstance(not_found.value, sns.exceptions.NotFoundException)
    with pytest.raises(ClientError) as publish_missing:
        sns.publish(TopicArn=missing, Message="x")
    assert _error(publish_missing) == ("NotFound", "Sender", 404)
    with pytest.raises(ClientError) as other_account:
        sns.get_topic_attributes(TopicArn=f"arn:aws:sns:{REGION}:999999999999:t")
    assert _error(other_account) == ("AuthorizationError", "Sender", 403)
    with pytest.raises(ClientError) as bad_name:
        sns.create_topic(Name="bad name!")
    assert _error(bad_name) == ("InvalidParameter", "Sender", 400)
    topic = sns.create_topic(Name=_name("errs"))["TopicArn"]
    with pytest.raises(ClientError) as bad_protocol:
        sns.subscribe(TopicArn=topic, Protocol="carrier-pigeon", Endpoint="x")
    assert _error(bad_protocol)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as not_a_queue_arn:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="https://example.com/queue")
    assert _error(not_a_queue_arn)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as too_big:
        sns.publish(TopicArn=topic, Message="x" * (256 * 1024 + 1))
    assert _error(too_big)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as empty:
        sns.publish(TopicArn=topic, Message="")
    assert _error(empty)[0] == "InvalidParameter"


def test_a_publish_a_queue_refuses_is_delivered_nowhere(sns: Any, sqs: Any) -> None:
    """All or none: a queue whose MaximumMessageSize is too small fails the publish for every queue."""
    topic = sns.create_topic(Name=_name("allornone"))["TopicArn"]
    big_url, big_arn = _queue(sqs, _name("big"))
    small_url, small_arn = _queue(sqs, _name("small"), {"MaximumMessageSize": "1024"})
    for arn in (big_arn, small_arn):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    with pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=topic, Message="y" * 2000)
    assert _error(refused)[0] == "InvalidParameter"
    assert _drain(sqs, big_url) == [] and _drain(sqs, small_url) == []
    sns.publish(TopicArn=topic, Message="small enough")
    assert [m["Body"] for m in _drain(sqs, big_url)] == ["small enough"]
    assert [m["Body"] for m in _drain(sqs, small_url)] == ["small enough"]


# -- routing: SNS and SQS on one port ------------------------------------------------------------------------


def _post(server: Server, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        server.endpoint + "/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_unsigned_requests_are_routed_by_version_then_action(server: Server, sns: Any) -> None:
    name = _name("routing")
    status, body = _post(server, {"Action": "CreateTopic", "Version": "2010-03-31", "Name": name})
    assert status == 200
    assert body.startswith(
        '<?xml version="1.0"?><CreateTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    )
    assert f"<CreateTopicResult><TopicArn>arn:aws:sns:{REGION}:{ACCOUNT}:{name}</TopicArn></CreateTopicResult>" in body
    assert "<ResponseMetadata><RequestId>" in body
    status, body = _post(server, {"Action": "ListTopics"})  # no Version: an SNS-only action
    assert status == 200 and "<ListTopicsResponse" in body and "<member><TopicArn>" in body
    status, body = _post(server, {"Action": "ListQueues", "Version": "2012-11-05"})
    assert status == 200 and "<ListQueuesResponse" in body
    status, body = _post(server, {"Action": "GetTopicAttributes", "Version": "2010-03-31", "TopicArn": "arn:x"})
    assert status == 400
    assert "<ErrorResponse" in body and "<Type>Sender</Type><Code>InvalidParameter</Code>" in body
    assert "sns.amazonaws.com" in body
    status, body = _post(server, {"Action": "CreatePlatformApplication", "Version": "2010-03-31"})
    assert status == 400 and "<Code>InvalidAction</Code>" in body


def test_the_signed_service_decides(server: Server) -> None:
    """AddPermission exists in both services: the credential scope's service says which one is meant."""
    name = _name("signed")
    _post(server, {"Action": "CreateTopic", "Version": "2010-03-31", "Name": name})
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=00"
    form = {
        "Action": "AddPermission",
        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        "Label": "l1",
        "AWSAccountId.member.1": "111122223333",
        "ActionName.member.1": "Publish",
    }
    status, body = _post(server, form, {"Authorization": auth.format("sns")})
    assert status == 200 and "<AddPermissionResponse" in body and "sns.amazonaws.com" in body
    status, body = _post(server, form, {"Authorization": auth.format("sqs")})
    assert status == 400 and "queue.amazonaws.com" in body  # SQS: AddPermission needs a QueueUrl
