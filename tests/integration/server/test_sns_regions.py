"""SNS fan-out across regions over the wire: boto3 clients signed for different regions against one
`scte queue serve` (one engine per region), and `/metrics` counting fanned-out messages as sent."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import boto3
from server_harness import ACCOUNT, CREDENTIALS, Server
from test_server_observability import q, scrape


def _client(server: Server, service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=server.endpoint, region_name=region, **CREDENTIALS)  # type: ignore[call-overload]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_a_topic_delivers_to_queues_of_other_regions(server: Server) -> None:
    sns = _client(server, "sns", "us-west-1")
    sqs_west2 = _client(server, "sqs", "us-west-2")
    sqs_east = _client(server, "sqs", "us-east-1")
    topic = sns.create_topic(Name=_name("regional"))["TopicArn"]
    assert topic.startswith(f"arn:aws:sns:us-west-1:{ACCOUNT}:")
    far, near = _name("far"), _name("east")
    far_url = sqs_west2.create_queue(QueueName=far)["QueueUrl"]
    raw_url = sqs_east.create_queue(QueueName=near)["QueueUrl"]
    far_sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:us-west-2:{ACCOUNT}:{far}")
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:us-east-1:{ACCOUNT}:{near}",
        Attributes={"RawMessageDelivery": "true"},
    )

    published = sns.publish(
        TopicArn=topic,
        Message="my message",
        Subject="my subject",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    # No wait: the publish makes the first delivery attempt before it answers.
    (message,) = sqs_west2.receive_message(QueueUrl=far_url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["MessageId"] == published["MessageId"]
    assert envelope["TopicArn"] == topic and envelope["Subject"] == "my subject"
    assert envelope["Message"] == "my message" and envelope["SigningCertURL"]
    assert envelope["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    (raw,) = sqs_east.receive_message(QueueUrl=raw_url, MessageAttributeNames=["All"])["Messages"]
    assert raw["Body"] == "my message" and raw["MessageAttributes"]["k"]["StringValue"] == "v"
    # The queue's own region does not see the topic: regions stay apart for everything else.
    assert topic not in [t["TopicArn"] for t in _client(server, "sns", "us-west-2").list_topics()["Topics"]]

    m = scrape(server.endpoint)
    assert m[q("scte_queue_messages_sent_total", far, "us-west-2")] == 1
    assert m[q("scte_queue_messages_sent_total", near, "us-east-1")] == 1
    topic_labels = (("region", "us-west-1"), ("topic", topic.rsplit(":", 1)[1]))
    assert m[("scte_topic_messages_delivered_total", topic_labels)] == 2

    # The UnsubscribeURL (unsigned GET) reaches the topic's region, wherever the queue is.
    assert envelope["UnsubscribeURL"].startswith(server.endpoint + "/?Action=Unsubscribe")
    with urllib.request.urlopen(envelope["UnsubscribeURL"], timeout=10) as response:
        assert response.status == 200
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert far_sub["SubscriptionArn"] not in [s["SubscriptionArn"] for s in subs] and len(subs) == 1
    sns.publish(TopicArn=topic, Message="after unsubscribing")
    assert "Messages" not in sqs_west2.receive_message(QueueUrl=far_url)


def test_fifo_topic_to_a_fifo_queue_in_another_region_keeps_group_order(server: Server) -> None:
    sns = _client(server, "sns", "eu-west-1")
    sqs = _client(server, "sqs", "eu-central-1")
    topic = sns.create_topic(
        Name=_name("ordered") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    )["TopicArn"]
    name = _name("ordered") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:eu-central-1:{ACCOUNT}:{name}",
        Attributes={"RawMessageDelivery": "true"},
    )
    for i in range(3):
        sns.publish(TopicArn=topic, Message=f"single {i}", MessageGroupId="g")
    sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[{"Id": f"b{i}", "Message": f"batch {i}", "MessageGroupId": "g"} for i in range(3)],
    )
    sns.publish(TopicArn=topic, Message="single 0", MessageGroupId="g")  # deduplicated by the topic
    bodies: list[str] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    assert bodies == [f"single {i}" for i in range(3)] + [f"batch {i}" for i in range(3)]
