"""Validation of what topics and subscriptions store: topic attributes, tags, subscription attributes,
endpoints; and the defaults SNS reports (access policy, effective delivery policy)."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from scte.queue.filter_policy import SCOPES, parse_policy
from scte.queue.topics.errors import SnsError, invalid
from scte.queue.topics.limits import E164, MAX_TAGS, PROTOCOLS
from scte.queue.topics.records import Topic

DEFAULT_EFFECTIVE_DELIVERY_POLICY: dict[str, Any] = {
    "defaultHealthyRetryPolicy": {
        "numNoDelayRetries": 0,
        "numMinDelayRetries": 0,
        "minDelayTarget": 20,
        "maxDelayTarget": 20,
        "numMaxDelayRetries": 0,
        "numRetries": 3,
        "backoffFunction": "linear",
    },
    "sicklyRetryPolicy": None,
    "throttlePolicy": None,
    "guaranteed": False,
}
POLICY_ACTIONS = (
    "GetTopicAttributes",
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ListSubscriptionsByTopic",
    "Publish",
)
PERMISSION_ACTIONS = frozenset((*POLICY_ACTIONS, "Receive"))
_FEEDBACK_ATTRIBUTES = frozenset(
    f"{proto}{kind}"
    for proto in ("Application", "HTTP", "Lambda", "SQS", "Firehose")
    for kind in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")
)
TOPIC_ATTRIBUTES = frozenset(
    (
        "DeliveryPolicy",
        "DisplayName",
        "FifoTopic",
        "Policy",
        "SignatureVersion",
        "TracingConfig",
        "KmsMasterKeyId",
        "ContentBasedDeduplication",
        "FifoThroughputScope",
        "ArchivePolicy",
        "DataProtectionPolicy",
        *_FEEDBACK_ATTRIBUTES,
    )
)
SUBSCRIPTION_ATTRIBUTES = frozenset(
    (
        "DeliveryPolicy",
        "FilterPolicy",
        "FilterPolicyScope",
        "RawMessageDelivery",
        "RedrivePolicy",
        "SubscriptionRoleArn",
        "ReplayPolicy",
    )
)


def boolean(name: str, value: object) -> str:
    """ "true" or "false" from a boolean attribute's value, or `InvalidParameter`."""
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise invalid(f"Invalid parameter: Attributes Reason: {name}: Invalid value [{value}]. Must be true or false.")
    return text


def json_object(name: str, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, TypeError):
        raise invalid(f"Invalid parameter: {name} Error: the value is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise invalid(f"Invalid parameter: {name} Error: the value must be a JSON object")
    return parsed


def default_policy(arn: str, account: str) -> str:
    """The access policy a new topic gets."""
    policy = {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Effect": "Allow",
                "Sid": "__default_statement_ID",
                "Principal": {"AWS": "*"},
                "Action": [f"SNS:{a}" for a in POLICY_ACTIONS],
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
            }
        ],
    }
    return json.dumps(policy, separators=(",", ":"))


def topic_attribute(name: str, value: object, fifo: bool) -> str:
    """Validate and normalize one settable topic attribute."""
    if name not in TOPIC_ATTRIBUTES:
        raise invalid("Invalid parameter: AttributeName")
    if isinstance(value, bool):
        value = "true" if value else "false"
    if not isinstance(value, str):
        value = str(value)
    if name in ("FifoTopic", "ContentBasedDeduplication"):
        value = boolean(name, value)
        if name == "ContentBasedDeduplication" and value == "true" and not fifo:
            raise invalid(
                "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for FIFO topics"
            )
    elif name == "Policy":
        value = json.dumps(json_object("Policy", value), separators=(",", ":"))
    elif name in ("DeliveryPolicy", "ArchivePolicy", "DataProtectionPolicy"):
        if value:
            json_object(name, value)
        if name == "ArchivePolicy" and value and not fifo:
            raise invalid("Invalid parameter: Attributes Reason: ArchivePolicy is only supported for FIFO topics")
    elif name == "DisplayName":
        if len(value) > 100:
            raise invalid("Invalid parameter: DisplayName Reason: must be 100 characters or fewer")
    elif name == "SignatureVersion":
        if value not in ("1", "2"):
            raise invalid("Invalid parameter: SignatureVersion Reason: must be 1 or 2")
    elif name == "TracingConfig":
        if value not in ("PassThrough", "Active"):
            raise invalid("Invalid parameter: TracingConfig Reason: must be PassThrough or Active")
    elif name == "FifoThroughputScope":
        if not fifo:
            raise invalid("Invalid parameter: Attributes Reason: FifoThroughputScope is only for FIFO topics")
        if value not in ("Topic", "MessageGroup"):
            raise invalid("Invalid parameter: FifoThroughputScope Reason: must be Topic or MessageGroup")
    return value


def validate_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise SnsError("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.startswith("aws:"):
            raise invalid(f"Invalid parameter: Tags Reason: invalid tag key [{key}]")
        if not isinstance(value, str) or len(value) > 256:
            raise invalid(f"Invalid parameter: Tags Reason: invalid tag value for key [{key}]")


def check_endpoint(topic: Topic, protocol: str, endpoint: str) -> None:
    """Refuse an endpoint the protocol cannot have (Subscribe)."""
    if protocol not in PROTOCOLS:
        raise invalid(f"Invalid parameter: Amazon SNS does not support this protocol string: {protocol}")
    if not endpoint or not isinstance(endpoint, str):
        raise invalid("Invalid parameter: Endpoint")
    if protocol == "sqs":
        parts = endpoint.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
            raise invalid("Invalid parameter: SQS endpoint ARN")
        if parts[5].endswith(".fifo") and not topic.fifo:
            raise invalid(
                "Invalid parameter: Invalid parameter: Endpoint Reason: "
                "FIFO SQS Queues can not be subscribed to standard SNS topics"
            )
    elif protocol in ("http", "https"):
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme != protocol or not parsed.netloc:
            raise invalid("Invalid parameter: Endpoint must match the specified protocol")
    elif protocol in ("email", "email-json"):
        if "@" not in endpoint.strip("@"):
            raise invalid("Invalid parameter: Email address")
    elif protocol == "sms":
        if re.search(r"[./-]{2,}", endpoint) or re.search(r"(^[./-]|[./-]$)", endpoint):
            raise invalid(f"Invalid SMS endpoint: {endpoint}")
        if not E164.fullmatch(re.sub(r"[./-]", "", endpoint)):
            raise invalid(f"Invalid SMS endpoint: {endpoint}")
    elif not endpoint.startswith("arn:"):
        raise invalid(f"Invalid parameter: {protocol.capitalize()} endpoint ARN")


def subscription_attribute(sub_attrs: dict[str, str], name: str, value: object) -> None:
    """Validate and apply one subscription attribute to `sub_attrs`."""
    if name not in SUBSCRIPTION_ATTRIBUTES:
        raise invalid("Invalid parameter: AttributeName")
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = "" if value is None else str(value)
    if name == "RawMessageDelivery":
        sub_attrs[name] = boolean(name, text)
    elif name == "FilterPolicyScope":
        if text not in SCOPES:
            raise invalid(
                f"Invalid parameter: FilterPolicyScope: Invalid value [{text}]. "
                "Please use either MessageBody or MessageAttributes"
            )
        if sub_attrs.get("FilterPolicy"):
            parse_policy(sub_attrs["FilterPolicy"], text)
        sub_attrs[name] = text
    elif name == "FilterPolicy":
        if text:
            parse_policy(text, sub_attrs.get("FilterPolicyScope") or "MessageAttributes")
            sub_attrs[name] = text
        else:
            sub_attrs.pop(name, None)
    elif name == "RedrivePolicy":
        if text:
            policy = json_object("RedrivePolicy", text)
            target = policy.get("deadLetterTargetArn")
            if not isinstance(target, str) or len(target.split(":")) != 6 or ":sqs:" not in target:
                raise invalid("Invalid parameter: RedrivePolicy: deadLetterTargetArn is not a valid SQS queue ARN")
            sub_attrs[name] = text
        else:
            sub_attrs.pop(name, None)
    elif name in ("DeliveryPolicy", "ReplayPolicy"):
        if text:
            json_object(name, text)
            sub_attrs[name] = text
        else:
            sub_attrs.pop(name, None)
    elif text:
        sub_attrs[name] = text
    else:
        sub_attrs.pop(name, None)


def apply_subscription_attributes(base: dict[str, str], attributes: Mapping[str, Any]) -> dict[str, str]:
    """`base` with `attributes` applied, validated (the scope first: the policy is checked against it)."""
    out = dict(base)
    if "FilterPolicyScope" in attributes:
        subscription_attribute(out, "FilterPolicyScope", attributes["FilterPolicyScope"])
    for key, value in attributes.items():
        if key != "FilterPolicyScope":
            subscription_attribute(out, key, value)
    return out
