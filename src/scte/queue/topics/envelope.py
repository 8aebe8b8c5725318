"""What subscribers receive: the SNS JSON envelope of a notification, the HTTP `SubscriptionConfirmation`,
the HTTP headers, and the `Signature` field (a per-process HMAC, not an AWS certificate signature)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any

from scte.queue.topics.records import Publication, Subscription, Topic

CERT_PATH = "/SimpleNotificationService-scte.pem"


def timestamp(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, as SNS writes `Timestamp`."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Signer:
    """A per-process HMAC in the Signature field: present and stable in shape, but not an AWS
    certificate signature (there is no AWS key to sign with), so clients must not verify it."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def sign(self, message_id: str, topic_arn: str, text: str) -> str:
        digest = hashlib.sha256(self._key + f"{message_id}\n{topic_arn}\n{text}".encode()).digest()
        return base64.b64encode(digest).decode("ascii")


def notification(
    topic: Topic,
    sub: Subscription,
    p: Publication,
    message: str,
    sequence: str | None,
    *,
    base_url: str,
    signer: Signer,
) -> str:
    """The `Notification` envelope a non-raw subscription receives."""
    document: dict[str, Any] = {"Type": "Notification", "MessageId": p.message_id}
    if sequence is not None:
        document["SequenceNumber"] = sequence
    document["TopicArn"] = topic.arn
    if p.subject is not None:
        document["Subject"] = p.subject
    document["Message"] = message
    document["Timestamp"] = p.timestamp
    document["SignatureVersion"] = topic.attributes.get("SignatureVersion", "1")
    document["Signature"] = signer.sign(p.message_id, topic.arn, message)
    document["SigningCertURL"] = f"{base_url}{CERT_PATH}"
    quoted = urllib.parse.quote(sub.arn, safe="")
    document["UnsubscribeURL"] = f"{base_url}/?Action=Unsubscribe&SubscriptionArn={quoted}"
    if p.attributes:
        document["MessageAttributes"] = {
            name: {
                "Type": attr["DataType"],
                "Value": attr["StringValue"]
                if "StringValue" in attr
                else base64.b64encode(attr["BinaryValue"]).decode("ascii"),
            }
            for name, attr in p.attributes.items()
        }
    return json.dumps(document, indent=2, ensure_ascii=False)


def http_notification(
    topic: Topic,
    sub: Subscription,
    p: Publication,
    message: str,
    sequence: str | None,
    *,
    base_url: str,
    signer: Signer,
) -> tuple[str, dict[str, str]]:
    """(body, headers) of a notification POSTed to an http/https subscription."""
    headers = {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": p.message_id,
        "x-amz-sns-topic-arn": topic.arn,
        "x-amz-sns-subscription-arn": sub.arn,
    }
    if sub.raw:
        headers["x-amz-sns-rawdelivery"] = "true"
        return message, headers
    return notification(topic, sub, p, message, sequence, base_url=base_url, signer=signer), headers


def confirmation(
    topic_arn: str, token: str, *, now: float, base_url: str, signer: Signer
) -> tuple[str, dict[str, str]]:
    """(body, headers) of the `SubscriptionConfirmation` POSTed to a new http/https subscription."""
    message_id = str(uuid.uuid4())
    query = urllib.parse.urlencode({"Action": "ConfirmSubscription", "TopicArn": topic_arn, "Token": token})
    document = {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": token,
        "TopicArn": topic_arn,
        "Message": (
            f"You have chosen to subscribe to the topic {topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        ),
        "SubscribeURL": f"{base_url}/?{query}",
        "Timestamp": timestamp(now),
        "SignatureVersion": "1",
        "Signature": signer.sign(message_id, topic_arn, token),
        "SigningCertURL": f"{base_url}{CERT_PATH}",
    }
    headers = {
        "x-amz-sns-message-type": "SubscriptionConfirmation",
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic_arn,
    }
    return json.dumps(document, indent=2), headers
