"""Topics: SNS semantics on the broker's engine, durable in the same SQLite file.

`Topics(engine)` (reachable as `engine.topics`) is the async, in-process API the SNS wire layer
serves: topics, subscriptions, publish and fan-out. Arguments and results use the SNS query
protocol's member names (`TopicArn`, `SubscriptionArn`, `MessageId`, ...); errors are `SnsError`
with SNS's codes (InvalidParameter, NotFound, AuthorizationError, ...) and messages.

Fan-out is transactional: a publish is accepted, filtered through every confirmed subscription's
filter policy, and written to every matching queue in one store transaction, all or none; queues
then wake their long polls. HTTP/HTTPS notifications go to an outbox table in that same transaction
and a background deliverer posts them (with retries, and the subscription's dead-letter queue when
they are exhausted), so a crash never loses an accepted notification. Other protocols (email, sms,
lambda, application, firehose) can be subscribed but are not delivered: this broker has no such
transports, and their notifications are counted as undeliverable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import secrets
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scte.queue.errors import SqsError
from scte.queue.filter_policy import SCOPES, FilterPolicy, SnsError, invalid, parse_policy

if TYPE_CHECKING:
    from scte.queue.engine import Engine

__all__ = ["DEFAULT_EFFECTIVE_DELIVERY_POLICY", "PAGE_SIZE", "SnsError", "Topics"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_ENTRIES = 10
MAX_TAGS = 50
DEDUP_WINDOW_MS = 5 * 60 * 1000
PENDING = "pending confirmation"
PENDING_LISTED = "PendingConfirmation"
HTTP_TIMEOUT_S = 5.0

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
_POLICY_ACTIONS = (
    "GetTopicAttributes",
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ListSubscriptionsByTopic",
    "Publish",
)
_PERMISSION_ACTIONS = frozenset((*_POLICY_ACTIONS, "Receive"))
_FEEDBACK_ATTRIBUTES = frozenset(
    f"{proto}{kind}"
    for proto in ("Application", "HTTP", "Lambda", "SQS", "Firehose")
    for kind in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn")
)
_TOPIC_ATTRIBUTES = frozenset(
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
_SUBSCRIPTION_ATTRIBUTES = frozenset(
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
_PROTOCOLS = frozenset(("sqs", "http", "https", "email", "email-json", "sms", "lambda", "application", "firehose"))
_NEEDS_CONFIRMATION = frozenset(("http", "https", "email", "email-json"))
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_FIFO_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,251}\.fifo")
_E164 = re.compile(r"\+?[1-9]\d{1,14}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_ID = re.compile(r"[\x21-\x7e]{1,128}")
_TOPIC_NOT_FOUND = "Topic does not exist"


def not_found(message: str = _TOPIC_NOT_FOUND) -> SnsError:
    return SnsError("NotFound", message, status=404)


def _bool(name: str, value: object) -> str:
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise invalid(f"Invalid parameter: Attributes Reason: {name}: Invalid value [{value}]. Must be true or false.")
    return text


def _json_object(name: str, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (ValueError, TypeError):
        raise invalid(f"Invalid parameter: {name} Error: the value is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise invalid(f"Invalid parameter: {name} Error: the value must be a JSON object")
    return parsed


def _timestamp(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _page_start(next_token: str | None) -> int:
    if not next_token:
        return 0
    if not (next_token.isascii() and next_token.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise invalid("Invalid parameter: NextToken")
    return int(next_token)


def _page(items: list[Any], start: int) -> tuple[list[Any], str | None]:
    page = items[start : start + PAGE_SIZE]
    more = start + PAGE_SIZE < len(items)
    return page, (str(start + PAGE_SIZE) if more else None)


@dataclass(slots=True)
class _Topic:
    name: str
    arn: str
    fifo: bool
    attributes: dict[str, str]
    tags: dict[str, str]
    sequence: int
    deleted: int

    @property
    def content_dedup(self) -> bool:
        return self.attributes.get("ContentBasedDeduplication") == "true"


_TOPIC_COLUMNS = "name, arn, fifo, attributes, tags, sequence, deleted_subscriptions"


def _topic_of(row: Sequence[Any]) -> _Topic:
    name, arn, fifo, attributes, tags, sequence, deleted = row
    return _Topic(name, arn, bool(fifo), json.loads(attributes), json.loads(tags), sequence, deleted)


@dataclass(slots=True)
class _Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str]
    confirmed: bool
    token: str | None
    authenticated: bool

    @property
    def raw(self) -> bool:
        return self.attributes.get("RawMessageDelivery") == "true"

    def filter(self) -> FilterPolicy | None:
        text = self.attributes.get("FilterPolicy")
        if not text:
            return None
        return parse_policy(text, self.attributes.get("FilterPolicyScope") or "MessageAttributes")


_SUBSCRIPTION_COLUMNS = "arn, topic_arn, protocol, endpoint, owner, attributes, confirmed, token, authenticated"


def _subscription_of(row: Sequence[Any]) -> _Subscription:
    arn, topic_arn, protocol, endpoint, owner, attributes, confirmed, token, authenticated = row
    return _Subscription(
        arn, topic_arn, protocol, endpoint, owner, json.loads(attributes), bool(confirmed), token, bool(authenticated)
    )


@dataclass(slots=True)
class _Publication:
    """One publish request, validated as far as it can be without the topic."""

    message_id: str
    message: str
    subject: str | None
    attributes: dict[str, dict[str, Any]] | None
    structure: dict[str, str] | None
    group_id: str | None
    dedup_id: str | None
    timestamp: str
    entry_id: str | None = None


@dataclass(slots=True)
class _Outcome:
    message_id: str
    sequence: str | None = None
    queues: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    http: bool = False


class Topics:
    """SNS topics and subscriptions over an `Engine`; see the module docstring."""

    def __init__(self, engine: Engine, *, auto_confirm: bool = False, base_url: str = "http://127.0.0.1:9324") -> None:
        self._engine = engine
        #: Confirm http/https/email subscriptions at once, without the handshake (test mode).
        self.auto_confirm = auto_confirm
        #: Where SubscribeURL / UnsubscribeURL / SigningCertURL in notifications point (the wire server).
        self.base_url = base_url
        self._counters: dict[str, Counter[str]] = {}
        self._wake = asyncio.Event()
        self._deliverer: asyncio.Task[None] | None = None
        self._closed = False
        self._signing_key = secrets.token_bytes(32)

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume HTTP deliveries left in the outbox by a previous run."""
        pending = await self._run(lambda c: c.execute("SELECT 1 FROM sns_deliveries LIMIT 1").fetchone())
        if pending:
            self._kick()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        task, self._deliverer = self._deliverer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- plumbing ----------------------------------------------------------------------------------

    async def _run(self, work: Any) -> Any:
        return await self._engine._store.run(work)

    def _now_ms(self) -> int:
        return int(self._engine.clock.now() * 1000)

    @property
    def _account(self) -> str:
        return self._engine.config.account_id

    @property
    def _region(self) -> str:
        return self._engine.config.region

    def topic_arn(self, name: str) -> str:
        return f"arn:aws:sns:{self._region}:{self._account}:{name}"

    def _check_arn(self, arn: object, parameter: str = "TopicArn", action: str = "GetTopicAttributes") -> str:
        if not arn or not isinstance(arn, str):
            raise invalid(f"Invalid parameter: {parameter}")
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "sns":
            raise invalid(f"Invalid parameter: {parameter}")
        if parts[4] != self._account:
            raise SnsError(
                "AuthorizationError",
                f"User: arn:aws:iam::{self._account}:root is not authorized to perform: "
                f"SNS:{action} on resource: {arn}",
                status=403,
            )
        return arn

    def _topic(self, conn: sqlite3.Connection, arn: str) -> _Topic:
        row = conn.execute(f"SELECT {_TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
        if row is None:
            raise not_found()
        return _topic_of(row)

    @staticmethod
    def _save_topic(conn: sqlite3.Connection, topic: _Topic) -> None:
        conn.execute(
            "UPDATE topics SET attributes=?, tags=? WHERE arn=?",
            (json.dumps(topic.attributes), json.dumps(topic.tags), topic.arn),
        )

    @staticmethod
    def _subscription(conn: sqlite3.Connection, arn: str) -> _Subscription:
        row = conn.execute(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE arn=?", (arn,)).fetchone()
        if row is None:
            raise not_found("Subscription does not exist")
        return _subscription_of(row)

    def _counter(self, topic_arn: str) -> Counter[str]:
        counter = self._counters.get(topic_arn)
        if counter is None:
            counter = self._counters[topic_arn] = Counter()
        return counter

    def metrics(self) -> dict[str, dict[str, int]]:
        """Per-topic counters since start: published, delivered, filtered_out, undeliverable,
        duplicates (FIFO deduplication), http_delivered, http_failed, dead_lettered."""
        return {arn: dict(c) for arn, c in self._counters.items()}

    # -- topics ------------------------------------------------------------------------------------

    def _default_policy(self, arn: str) -> str:
        policy = {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Sid": "__default_statement_ID",
                    "Principal": {"AWS": "*"},
                    "Action": [f"SNS:{a}" for a in _POLICY_ACTIONS],
                    "Resource": arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": self._account}},
                }
            ],
        }
        return json.dumps(policy, separators=(",", ":"))

    @staticmethod
    def _topic_attribute(name: str, value: object, fifo: bool) -> str:
        """Validate and normalize one settable topic attribute."""
        if name not in _TOPIC_ATTRIBUTES:
            raise invalid("Invalid parameter: AttributeName")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            value = str(value)
        if name in ("FifoTopic", "ContentBasedDeduplication"):
            value = _bool(name, value)
            if name == "ContentBasedDeduplication" and value == "true" and not fifo:
                raise invalid(
                    "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for FIFO topics"
                )
        elif name == "Policy":
            value = json.dumps(_json_object("Policy", value), separators=(",", ":"))
        elif name in ("DeliveryPolicy", "ArchivePolicy", "DataProtectionPolicy"):
            if value:
                _json_object(name, value)
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

    @staticmethod
    def _validate_tags(tags: Mapping[str, str]) -> None:
        if len(tags) > MAX_TAGS:
            raise SnsError("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
        for key, value in tags.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.startswith("aws:"):
                raise invalid(f"Invalid parameter: Tags Reason: invalid tag key [{key}]")
            if not isinstance(value, str) or len(value) > 256:
                raise invalid(f"Invalid parameter: Tags Reason: invalid tag value for key [{key}]")

    async def create_topic(
        self, name: str, attributes: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """CreateTopic: the topic's ARN. Idempotent: an existing topic with the same name is returned,
        unless the request names attributes or tags it does not have."""
        attrs = dict(attributes or {})
        fifo = _bool("FifoTopic", attrs["FifoTopic"]) == "true" if "FifoTopic" in attrs else False
        if not isinstance(name, str) or not (_FIFO_TOPIC_NAME if fifo else _TOPIC_NAME).fullmatch(name):
            if fifo:
                raise invalid(
                    "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase "
                    "ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."
                )
            raise invalid(
                "Topic names must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, "
                "and hyphens, and must be between 1 and 256 characters long."
            )
        clean = {k: self._topic_attribute(k, v, fifo) for k, v in attrs.items()}
        tag_map = dict(tags or {})
        self._validate_tags(tag_map)
        arn = self.topic_arn(name)

        def create(conn: sqlite3.Connection) -> str:
            row = conn.execute(f"SELECT {_TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
            if row is not None:
                existing = _topic_of(row)
                differing = [
                    k
                    for k, v in clean.items()
                    if k != "FifoTopic" and existing.attributes.get(k, "" if k == "DisplayName" else None) != v
                ]
                if existing.fifo != fifo and "FifoTopic" in clean:
                    differing.append("FifoTopic")
                if differing:
                    raise invalid(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                    )
                if tag_map and any(existing.tags.get(k) != v for k, v in tag_map.items()):
                    raise invalid("Invalid parameter: Tags Reason: Topic already exists with different tags")
                return arn
            stored = {"DisplayName": "", "DeliveryPolicy": "", "Policy": self._default_policy(arn)}
            if fifo:
                stored["ContentBasedDeduplication"] = "false"
            stored.update({k: v for k, v in clean.items() if k != "FifoTopic"})
            conn.execute(
                "INSERT INTO topics (name, arn, fifo, attributes, tags, created) VALUES (?,?,?,?,?,?)",
                (name, arn, int(fifo), json.dumps(stored), json.dumps(tag_map), self._now_ms() // 1000),
            )
            return arn

        result: str = await self._run(create)
        return result

    async def delete_topic(self, topic_arn: str) -> None:
        """DeleteTopic: the topic and its subscriptions. Deleting a missing topic succeeds."""
        arn = self._check_arn(topic_arn, action="DeleteTopic")

        def delete(conn: sqlite3.Connection) -> None:
            subs = [r[0] for r in conn.execute("SELECT arn FROM subscriptions WHERE topic_arn=?", (arn,))]
            if subs:
                conn.executemany("DELETE FROM sns_deliveries WHERE subscription_arn=?", [(s,) for s in subs])
            conn.execute("DELETE FROM subscriptions WHERE topic_arn=?", (arn,))
            conn.execute("DELETE FROM topic_dedup WHERE topic_arn=?", (arn,))
            conn.execute("DELETE FROM topics WHERE arn=?", (arn,))

        await self._run(delete)
        self._counters.pop(arn, None)

    async def list_topics(self, next_token: str | None = None) -> tuple[list[str], str | None]:
        """ListTopics: topic ARNs in creation order, pages of 100 joined by `next_token`."""
        start = _page_start(next_token)
        arns = await self._run(lambda c: [r[0] for r in c.execute("SELECT arn FROM topics ORDER BY rowid")])
        return _page(arns, start)

    async def get_topic_attributes(self, topic_arn: str) -> dict[str, str]:
        arn = self._check_arn(topic_arn)

        def read(conn: sqlite3.Connection) -> dict[str, str]:
            topic = self._topic(conn, arn)
            confirmed, pending = conn.execute(
                "SELECT COALESCE(SUM(confirmed), 0), COALESCE(SUM(1 - confirmed), 0) FROM subscriptions "
                "WHERE topic_arn=?",
                (arn,),
            ).fetchone()
            out = {
                "TopicArn": arn,
                "Owner": self._account,
                "SubscriptionsConfirmed": str(confirmed),
                "SubscriptionsPending": str(pending),
                "SubscriptionsDeleted": str(topic.deleted),
                "EffectiveDeliveryPolicy": topic.attributes.get("DeliveryPolicy")
                or json.dumps(DEFAULT_EFFECTIVE_DELIVERY_POLICY),
            }
            for key, value in topic.attributes.items():
                if key == "ContentBasedDeduplication" and not topic.fifo:
                    continue
                if key == "KmsMasterKeyId" and not value:
                    continue
                out[key] = value
            if topic.fifo:
                out["FifoTopic"] = "true"
                out.setdefault("ContentBasedDeduplication", "false")
            return out

        result: dict[str, str] = await self._run(read)
        return result

    async def set_topic_attributes(self, topic_arn: str, name: str, value: Any) -> None:
        arn = self._check_arn(topic_arn, action="SetTopicAttributes")
        if not name:
            raise invalid("Invalid parameter: AttributeName")
        if name == "FifoTopic":
            raise invalid("Invalid parameter: AttributeName Reason: FifoTopic can not be changed")

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._topic(conn, arn)
            topic.attributes[name] = self._topic_attribute(name, "" if value is None else value, topic.fifo)
            self._save_topic(conn, topic)

        await self._run(apply)

    async def add_permission(
        self, topic_arn: str, label: str, account_ids: Sequence[str], action_names: Sequence[str]
    ) -> None:
        arn = self._check_arn(topic_arn, action="AddPermission")
        if not label:
            raise invalid("Invalid parameter: Label")
        if not account_ids or not action_names:
            raise invalid("Invalid parameter: AWSAccountId and ActionName are required")
        if any(a not in _PERMISSION_ACTIONS for a in action_names):
            raise invalid("Policy statement action out of service scope!")

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._topic(conn, arn)
            policy = json.loads(topic.attributes.get("Policy") or self._default_policy(arn))
            statements = policy.setdefault("Statement", [])
            if any(s.get("Sid") == label for s in statements):
                raise invalid("Statement already exists")
            principals = [f"arn:aws:iam::{a}:root" for a in account_ids]
            actions = [f"SNS:{a}" for a in action_names]
            statements.append(
                {
                    "Sid": label,
                    "Effect": "Allow",
                    "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                    "Action": actions[0] if len(actions) == 1 else actions,
                    "Resource": arn,
                }
            )
            topic.attributes["Policy"] = json.dumps(policy, separators=(",", ":"))
            self._save_topic(conn, topic)

        await self._run(apply)

    async def remove_permission(self, topic_arn: str, label: str) -> None:
        arn = self._check_arn(topic_arn, action="RemovePermission")

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._topic(conn, arn)
            policy = json.loads(topic.attributes.get("Policy") or self._default_policy(arn))
            policy["Statement"] = [s for s in policy.get("Statement", []) if s.get("Sid") != label]
            topic.attributes["Policy"] = json.dumps(policy, separators=(",", ":"))
            self._save_topic(conn, topic)

        await self._run(apply)

    # -- tags ----------------------------------------------------------------------------------------

    def _tagged_topic(self, conn: sqlite3.Connection, arn: str) -> _Topic:
        row = conn.execute(f"SELECT {_TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
        if row is None:
            raise SnsError("ResourceNotFound", "Resource does not exist", status=404)
        return _topic_of(row)

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        tag_map = dict(tags)

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._tagged_topic(conn, resource_arn)
            merged = {**topic.tags, **tag_map}
            self._validate_tags(merged)
            topic.tags = merged
            self._save_topic(conn, topic)

        await self._run(apply)

    async def untag_resource(self, resource_arn: str, tag_keys: Sequence[str]) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            topic = self._tagged_topic(conn, resource_arn)
            for key in tag_keys:
                topic.tags.pop(key, None)
            self._save_topic(conn, topic)

        await self._run(apply)

    async def list_tags_for_resource(self, resource_arn: str) -> dict[str, str]:
        """The topic's tags in the order they were first set."""
        topic: _Topic = await self._run(lambda c: self._tagged_topic(c, resource_arn))
        return topic.tags

    # -- subscriptions -------------------------------------------------------------------------------

    def _queue_name(self, endpoint: str) -> str | None:
        """The queue an `sqs` endpoint names, if it is a queue ARN of this broker's account and region."""
        parts = endpoint.split(":")
        if len(parts) != 6 or parts[4] != self._account or parts[3] != self._region:
            return None
        return parts[5]

    def _check_endpoint(self, topic: _Topic, protocol: str, endpoint: str) -> None:
        if protocol not in _PROTOCOLS:
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
            if not _E164.fullmatch(re.sub(r"[./-]", "", endpoint)):
                raise invalid(f"Invalid SMS endpoint: {endpoint}")
        elif not endpoint.startswith("arn:"):
            raise invalid(f"Invalid parameter: {protocol.capitalize()} endpoint ARN")

    @staticmethod
    def _subscription_attribute(sub_attrs: dict[str, str], name: str, value: object) -> None:
        """Validate and apply one subscription attribute to `sub_attrs`."""
        if name not in _SUBSCRIPTION_ATTRIBUTES:
            raise invalid("Invalid parameter: AttributeName")
        if isinstance(value, bool):
            value = "true" if value else "false"
        text = "" if value is None else str(value)
        if name == "RawMessageDelivery":
            sub_attrs[name] = _bool(name, text)
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
                policy = _json_object("RedrivePolicy", text)
                target = policy.get("deadLetterTargetArn")
                if not isinstance(target, str) or len(target.split(":")) != 6 or ":sqs:" not in target:
                    raise invalid("Invalid parameter: RedrivePolicy: deadLetterTargetArn is not a valid SQS queue ARN")
                sub_attrs[name] = text
            else:
                sub_attrs.pop(name, None)
        elif name in ("DeliveryPolicy", "ReplayPolicy"):
            if text:
                _json_object(name, text)
                sub_attrs[name] = text
            else:
                sub_attrs.pop(name, None)
        elif text:
            sub_attrs[name] = text
        else:
            sub_attrs.pop(name, None)

    def _apply_attributes(self, base: dict[str, str], attributes: Mapping[str, Any]) -> dict[str, str]:
        out = dict(base)
        if "FilterPolicyScope" in attributes:  # the policy is validated against the scope it gets
            self._subscription_attribute(out, "FilterPolicyScope", attributes["FilterPolicyScope"])
        for key, value in attributes.items():
            if key != "FilterPolicyScope":
                self._subscription_attribute(out, key, value)
        return out

    async def subscribe(
        self,
        topic_arn: str,
        protocol: str,
        endpoint: str,
        attributes: Mapping[str, Any] | None = None,
        return_subscription_arn: bool = False,
    ) -> str:
        """Subscribe: the subscription ARN, or "pending confirmation" for a subscription that awaits
        its handshake (http/https, email) unless `return_subscription_arn`. Idempotent for the same
        topic, protocol and endpoint. An `sqs` endpoint must be a queue ARN; as in SNS, a queue that
        does not exist (yet) is accepted and its notifications are dropped while it is missing."""
        arn = self._check_arn(topic_arn, action="Subscribe")
        if not protocol:
            raise invalid("Invalid parameter: Protocol")
        protocol = protocol.lower()
        attrs = dict(attributes or {})
        validated = self._apply_attributes({"RawMessageDelivery": "false"}, attrs)
        confirm_now = protocol not in _NEEDS_CONFIRMATION or self.auto_confirm
        now_ms = self._now_ms()

        def create(conn: sqlite3.Connection) -> tuple[str, bool]:
            topic = self._topic(conn, arn)
            self._check_endpoint(topic, protocol, endpoint)
            row = conn.execute(
                f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? AND protocol=? AND endpoint=?",
                (arn, protocol, endpoint),
            ).fetchone()
            if row is not None:
                existing = _subscription_of(row)
                if attrs and self._apply_attributes(existing.attributes, attrs) != existing.attributes:
                    raise invalid(
                        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
                    )
                return existing.arn, existing.confirmed
            sub_arn = f"{arn}:{uuid.uuid4()}"
            token = None if confirm_now else secrets.token_hex(64)
            conn.execute(
                "INSERT INTO subscriptions (arn, topic_arn, protocol, endpoint, owner, attributes, confirmed, token, "
                "authenticated, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    sub_arn,
                    arn,
                    protocol,
                    endpoint,
                    self._account,
                    json.dumps(validated),
                    int(confirm_now),
                    token,
                    int(confirm_now),
                    now_ms // 1000,
                ),
            )
            if token is not None and protocol in ("http", "https"):
                self._enqueue_http(conn, sub_arn, endpoint, self._confirmation(arn, sub_arn, token), now_ms)
            return sub_arn, confirm_now

        sub_arn, confirmed = await self._run(create)
        if not confirmed and protocol in ("http", "https"):
            self._kick()
        if confirmed or return_subscription_arn:
            return str(sub_arn)
        return PENDING

    def _confirmation(self, topic_arn: str, sub_arn: str, token: str) -> tuple[str, dict[str, str]]:
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
            "SubscribeURL": f"{self.base_url}/?{query}",
            "Timestamp": _timestamp(self._engine.clock.now()),
            "SignatureVersion": "1",
            "Signature": self._sign(message_id, topic_arn, token),
            "SigningCertURL": f"{self.base_url}/SimpleNotificationService-scte.pem",
        }
        headers = {
            "x-amz-sns-message-type": "SubscriptionConfirmation",
            "x-amz-sns-message-id": message_id,
            "x-amz-sns-topic-arn": topic_arn,
        }
        return json.dumps(document, indent=2), headers

    async def confirm_subscription(
        self, topic_arn: str, token: str, authenticate_on_unsubscribe: str | bool | None = None
    ) -> str:
        """ConfirmSubscription: the subscription ARN the token was sent for."""
        arn = self._check_arn(topic_arn, action="ConfirmSubscription")
        if not token:
            raise invalid("Invalid parameter: Token")
        authenticated = (
            authenticate_on_unsubscribe is not None
            and _bool("AuthenticateOnUnsubscribe", authenticate_on_unsubscribe) == "true"
        )

        def confirm(conn: sqlite3.Connection) -> str:
            self._topic(conn, arn)
            row = conn.execute("SELECT arn FROM subscriptions WHERE topic_arn=? AND token=?", (arn, token)).fetchone()
            if row is None:
                raise invalid("Invalid parameter: Token")
            conn.execute(
                "UPDATE subscriptions SET confirmed=1, authenticated=MAX(authenticated, ?) WHERE arn=?",
                (int(authenticated), row[0]),
            )
            return str(row[0])

        result: str = await self._run(confirm)
        return result

    async def pending_confirmation_token(self, subscription_arn: str) -> str | None:
        """The token a pending subscription awaits (for email subscriptions, tests and the console)."""
        row = await self._run(
            lambda c: c.execute(
                "SELECT token FROM subscriptions WHERE arn=? AND confirmed=0", (subscription_arn,)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def unsubscribe(self, subscription_arn: str) -> None:
        """Unsubscribe; an unknown (or already deleted) subscription is not an error."""
        if not subscription_arn or subscription_arn in (PENDING, PENDING_LISTED):
            raise invalid("Invalid parameter: SubscriptionArn")

        def delete(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT topic_arn FROM subscriptions WHERE arn=?", (subscription_arn,)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM subscriptions WHERE arn=?", (subscription_arn,))
            conn.execute("DELETE FROM sns_deliveries WHERE subscription_arn=?", (subscription_arn,))
            conn.execute("UPDATE topics SET deleted_subscriptions=deleted_subscriptions+1 WHERE arn=?", (row[0],))

        await self._run(delete)

    @staticmethod
    def _listed(sub: _Subscription) -> dict[str, str]:
        return {
            "SubscriptionArn": sub.arn if sub.confirmed else PENDING_LISTED,
            "Owner": sub.owner,
            "Protocol": sub.protocol,
            "Endpoint": sub.endpoint,
            "TopicArn": sub.topic_arn,
        }

    async def list_subscriptions(self, next_token: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        """ListSubscriptions: in creation order, pages of 100."""
        start = _page_start(next_token)
        subs = await self._run(
            lambda c: [
                _subscription_of(r)
                for r in c.execute(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY rowid")
            ]
        )
        page, token = _page(subs, start)
        return [self._listed(s) for s in page], token

    async def list_subscriptions_by_topic(
        self, topic_arn: str, next_token: str | None = None
    ) -> tuple[list[dict[str, str]], str | None]:
        arn = self._check_arn(topic_arn, action="ListSubscriptionsByTopic")
        start = _page_start(next_token)

        def read(conn: sqlite3.Connection) -> list[_Subscription]:
            self._topic(conn, arn)
            return [
                _subscription_of(r)
                for r in conn.execute(
                    f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? ORDER BY rowid", (arn,)
                )
            ]

        page, token = _page(await self._run(read), start)
        return [self._listed(s) for s in page], token

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        sub: _Subscription = await self._run(lambda c: self._subscription(c, subscription_arn))
        out = {
            "SubscriptionArn": sub.arn,
            "TopicArn": sub.topic_arn,
            "Owner": sub.owner,
            "Protocol": sub.protocol,
            "Endpoint": sub.endpoint,
            "PendingConfirmation": "false" if sub.confirmed else "true",
            "ConfirmationWasAuthenticated": "true" if sub.authenticated else "false",
            "SubscriptionPrincipal": f"arn:aws:iam::{sub.owner}:root",
        }
        attrs = dict(sub.attributes)
        out["RawMessageDelivery"] = attrs.pop("RawMessageDelivery", "false")
        scope = attrs.pop("FilterPolicyScope", None)
        if attrs.get("FilterPolicy"):
            out["FilterPolicyScope"] = scope or "MessageAttributes"
        out.update(attrs)
        if sub.protocol in ("http", "https"):
            out["EffectiveDeliveryPolicy"] = attrs.get("DeliveryPolicy") or json.dumps(
                DEFAULT_EFFECTIVE_DELIVERY_POLICY
            )
        return out

    async def set_subscription_attributes(self, subscription_arn: str, name: str, value: Any) -> None:
        if not name or name not in _SUBSCRIPTION_ATTRIBUTES:
            raise invalid("Invalid parameter: AttributeName")

        def apply(conn: sqlite3.Connection) -> None:
            sub = self._subscription(conn, subscription_arn)
            attrs = dict(sub.attributes)
            self._subscription_attribute(attrs, name, value)
            conn.execute("UPDATE subscriptions SET attributes=? WHERE arn=?", (json.dumps(attrs), sub.arn))

        await self._run(apply)

    # -- publishing ----------------------------------------------------------------------------------

    @staticmethod
    def _message_attributes(attrs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        """Validate SNS message attributes (SQS shape: DataType and StringValue | BinaryValue)."""
        if not attrs:
            return None
        out: dict[str, dict[str, Any]] = {}
        for name, attr in attrs.items():
            if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name) or ".." in name:
                raise invalid(f"Invalid parameter: MessageAttributes Reason: invalid attribute name [{name}]")
            if name.startswith(".") or name.endswith("."):
                raise invalid(f"Invalid parameter: MessageAttributes Reason: invalid attribute name [{name}]")
            if not isinstance(attr, Mapping):
                raise invalid(f"Invalid parameter: MessageAttributes Reason: attribute [{name}] must be a structure")
            data_type = attr.get("DataType")
            if not data_type or not isinstance(data_type, str):
                raise invalid(f"The message attribute '{name}' must contain non-empty message attribute type.")
            base = data_type.partition(".")[0]
            if base not in ("String", "Number", "Binary"):
                raise invalid(
                    f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
                    "type prefixes is Binary, Number, and String."
                )
            if base == "Binary":
                value = attr.get("BinaryValue")
                if isinstance(value, str):
                    try:
                        value = base64.b64decode(value, validate=True)
                    except ValueError:
                        raise invalid(f"The message attribute '{name}' has an invalid binary value.") from None
                if not isinstance(value, bytes | bytearray | memoryview) or not bytes(value):
                    raise invalid(
                        f"The message attribute '{name}' must contain non-empty message attribute value "
                        f"for message attribute type '{data_type}'."
                    )
                out[name] = {"DataType": data_type, "BinaryValue": bytes(value)}
                continue
            text = attr.get("StringValue")
            if not isinstance(text, str) or text == "":
                raise invalid(
                    f"The message attribute '{name}' must contain non-empty message attribute value "
                    f"for message attribute type '{data_type}'."
                )
            if base == "Number":
                try:
                    float(text)
                except ValueError:
                    raise invalid(
                        "An error occurred (ParameterValueInvalid) when calling the Publish operation: "
                        f"Could not cast message attribute '{name}' value to number."
                    ) from None
            out[name] = {"DataType": data_type, "StringValue": text}
        return out

    @staticmethod
    def _payload_size(message: str, attrs: Mapping[str, Mapping[str, Any]] | None) -> int:
        size = len(message.encode("utf-8"))
        for name, attr in (attrs or {}).items():
            size += len(name.encode()) + len(str(attr["DataType"]).encode())
            value = attr.get("StringValue")
            size += len(value.encode()) if isinstance(value, str) else len(attr.get("BinaryValue") or b"")
        return size

    def _prepare(
        self,
        message: object,
        subject: object,
        attributes: Mapping[str, Mapping[str, Any]] | None,
        structure: object,
        group_id: object,
        dedup_id: object,
        entry_id: str | None = None,
    ) -> _Publication:
        if message is None:
            raise invalid("Invalid parameter: Message")
        if not isinstance(message, str):
            raise invalid("Invalid parameter: Message Reason: must be a string")
        if message == "":
            raise invalid("Invalid parameter: Empty message")
        if subject is not None:
            if not isinstance(subject, str) or len(subject) >= 100:
                raise invalid("Subject must be less than 100 characters")
            if not subject or any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in subject):
                raise invalid("Invalid parameter: Subject")
        attrs = self._message_attributes(attributes)
        if self._payload_size(message, attrs) > MAX_MESSAGE_BYTES:
            raise invalid("Invalid parameter: Message too long")
        parsed: dict[str, str] | None = None
        if structure is not None:
            if structure != "json":
                raise invalid("MessageStructure must be 'json' if provided")
            try:
                document = json.loads(message)
            except ValueError:
                raise invalid("Message is not valid JSON.") from None
            if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
                raise invalid("Message is not valid JSON.")
            parsed = document
        for parameter, value in (("MessageGroupId", group_id), ("MessageDeduplicationId", dedup_id)):
            if value is not None and (not isinstance(value, str) or not _FIFO_ID.fullmatch(value)):
                raise invalid(
                    f"Invalid parameter: {parameter} Reason: must be 1 to 128 characters from "
                    "alphanumeric and punctuation characters"
                )
        return _Publication(
            message_id=str(uuid.uuid4()),
            message=message,
            subject=subject if isinstance(subject, str) else None,
            attributes=attrs,
            structure=parsed,
            group_id=group_id if isinstance(group_id, str) else None,
            dedup_id=dedup_id if isinstance(dedup_id, str) else None,
            timestamp=_timestamp(self._engine.clock.now()),
            entry_id=entry_id,
        )

    async def publish(
        self,
        topic_arn: str | None = None,
        message: str | None = None,
        *,
        subject: str | None = None,
        message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        message_structure: str | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        target_arn: str | None = None,
        phone_number: str | None = None,
    ) -> dict[str, str]:
        """Publish: {"MessageId"[, "SequenceNumber"]}. Delivered to every matching subscription in one
        transaction with the acceptance: if any queue refuses the message, nothing is delivered."""
        if phone_number is not None:
            if not isinstance(phone_number, str) or not _E164.fullmatch(phone_number):
                raise invalid("Invalid parameter: PhoneNumber Reason: Phone number does not meet the E164 format")
            if isinstance(message, str) and len(message) > 1600:
                raise invalid("Invalid parameter: Message Reason: SMS message must be less than 1600 bytes")
            raise invalid("Invalid parameter: PhoneNumber Reason: SMS delivery is not supported by this broker")
        if target_arn is not None:
            if topic_arn is not None:
                raise invalid("Invalid parameter: TopicArn or TargetArn Reason: Only one of them may be set")
            if ":sns:" not in target_arn or len(target_arn.split(":")) != 6:
                raise invalid(
                    "Invalid parameter: TargetArn Reason: "
                    "Platform application endpoints are not supported by this broker"
                )
            topic_arn = target_arn
        if topic_arn is None:
            raise invalid("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
        arn = self._check_arn(topic_arn, action="Publish")
        publication = self._prepare(
            message, subject, message_attributes, message_structure, message_group_id, message_deduplication_id
        )
        outcome: _Outcome = await self._run(lambda c: self._publish_in(c, arn, publication, batch=False))
        self._after([outcome], arn)
        result = {"MessageId": outcome.message_id}
        if outcome.sequence is not None:
            result["SequenceNumber"] = outcome.sequence
        return result

    async def publish_batch(self, topic_arn: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PublishBatch: {"Successful": [{"Id", "MessageId"[, "SequenceNumber"]}], "Failed": [{"Id",
        "Code", "Message", "SenderFault"}]}; each entry is its own all-or-none publish."""
        arn = self._check_arn(topic_arn, action="Publish")
        topic: _Topic = await self._run(lambda c: self._topic(c, arn))
        if not entries:
            raise SnsError("EmptyBatchRequest", "The batch request doesn't contain any entries.")
        if len(entries) > MAX_BATCH_ENTRIES:
            raise SnsError("TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.")
        ids = [e.get("Id") for e in entries]
        for entry_id in ids:
            if not isinstance(entry_id, str) or not _BATCH_ID.fullmatch(entry_id):
                raise SnsError(
                    "InvalidBatchEntryId",
                    "The Id of a batch entry in a batch request doesn't abide by the specification.",
                )
        if len(set(ids)) != len(ids):
            raise SnsError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
        if topic.fifo and not all(e.get("MessageGroupId") for e in entries):
            raise invalid("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
        total = sum(len(str(e.get("Message") or "").encode("utf-8")) for e in entries)
        if total > MAX_MESSAGE_BYTES:
            raise SnsError("BatchRequestTooLong", "The length of all the messages put together is more than the limit.")
        failed: list[dict[str, Any]] = []
        prepared: list[_Publication] = []
        for entry in entries:
            try:
                prepared.append(
                    self._prepare(
                        entry.get("Message"),
                        entry.get("Subject"),
                        entry.get("MessageAttributes"),
                        entry.get("MessageStructure"),
                        entry.get("MessageGroupId"),
                        entry.get("MessageDeduplicationId"),
                        entry_id=str(entry["Id"]),
                    )
                )
            except SqsError as exc:
                failed.append(_failure(str(entry["Id"]), exc))

        def run(conn: sqlite3.Connection) -> list[_Outcome | SqsError]:
            results: list[_Outcome | SqsError] = []
            for publication in prepared:
                conn.execute("SAVEPOINT sns_entry")
                try:
                    results.append(self._publish_in(conn, arn, publication, batch=True))
                except SqsError as exc:
                    conn.execute("ROLLBACK TO sns_entry")
                    self._engine._ops.load(conn)  # message ids allocated by the undone entry
                    results.append(exc)
                conn.execute("RELEASE sns_entry")
            return results

        results: list[_Outcome | SqsError] = await self._run(run) if prepared else []
        successful: list[dict[str, str]] = []
        outcomes: list[_Outcome] = []
        for publication, result in zip(prepared, results, strict=True):
            assert publication.entry_id is not None
            if isinstance(result, SqsError):
                failed.append(_failure(publication.entry_id, result))
                continue
            outcomes.append(result)
            item = {"Id": publication.entry_id, "MessageId": result.message_id}
            if result.sequence is not None:
                item["SequenceNumber"] = result.sequence
            successful.append(item)
        self._after(outcomes, arn)
        order = {entry_id: i for i, entry_id in enumerate(ids)}
        failed.sort(key=lambda f: order[f["Id"]])
        return {"Successful": successful, "Failed": failed}

    def _after(self, outcomes: Sequence[_Outcome], topic_arn: str) -> None:
        """After the commit: wake the queues' long polls, the HTTP deliverer, count."""
        counter = self._counter(topic_arn)
        http = False
        for outcome in outcomes:
            for queue in outcome.queues:
                self._engine._notify(queue)
            counter.update(outcome.counts)
            http = http or outcome.http
        if http:
            self._kick()

    def _publish_in(self, conn: sqlite3.Connection, arn: str, p: _Publication, *, batch: bool) -> _Outcome:
        """Accept one publication and fan it out, inside the caller's transaction. Raises before
        returning if anything fails; the store (or publish_batch's savepoint) then undoes it all."""
        topic = self._topic(conn, arn)
        now_ms = self._now_ms()
        dedup_id = p.dedup_id
        sequence: str | None = None
        if topic.fifo:
            if not p.group_id:
                if batch:
                    raise invalid("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
                raise invalid("The request must contain the parameter MessageGroupId.")
            if dedup_id is None:
                if not topic.content_dedup:
                    raise invalid(
                        "The topic should either have ContentBasedDeduplication enabled or "
                        "MessageDeduplicationId provided explicitly"
                    )
                dedup_id = hashlib.sha256(p.message.encode("utf-8")).hexdigest()
            seen = conn.execute(
                "SELECT message_id, sequence FROM topic_dedup WHERE topic_arn=? AND dedup_id=? AND expires_at>?",
                (arn, dedup_id, now_ms),
            ).fetchone()
            if seen is not None:
                return _Outcome(message_id=seen[0], sequence=seen[1], counts=Counter(duplicates=1))
            topic.sequence += 1
            sequence = f"{topic.sequence:020d}"
            conn.execute("UPDATE topics SET sequence=? WHERE arn=?", (topic.sequence, arn))
            conn.execute("DELETE FROM topic_dedup WHERE expires_at<=?", (now_ms,))
            conn.execute(
                "INSERT OR REPLACE INTO topic_dedup (topic_arn, dedup_id, expires_at, message_id, sequence) "
                "VALUES (?,?,?,?,?)",
                (arn, dedup_id, now_ms + DEDUP_WINDOW_MS, p.message_id, sequence),
            )
        elif dedup_id is not None:
            raise invalid(
                "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId "
                "parameter that is not valid for this topic type"
            )
        subs = [
            _subscription_of(r)
            for r in conn.execute(
                f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? AND confirmed=1 ORDER BY rowid",
                (arn,),
            )
        ]
        if p.structure is not None and "default" not in p.structure:
            if subs:
                raise invalid(f"Message does not contain {subs[0].protocol} or default keys.")
            raise invalid("Invalid parameter: Message Structure - No default entry in JSON message body")
        outcome = _Outcome(message_id=p.message_id, sequence=sequence)
        outcome.counts["published"] += 1
        for sub in subs:
            policy = sub.filter()
            if policy is not None and not policy.matches(p.attributes, p.message):
                outcome.counts["filtered_out"] += 1
                continue
            message = p.message if p.structure is None else p.structure.get(sub.protocol, p.structure["default"])
            if sub.protocol == "sqs":
                self._deliver_sqs(conn, topic, sub, p, message, dedup_id, sequence, outcome)
            elif sub.protocol in ("http", "https"):
                body, headers = self._http_payload(topic, sub, p, message, sequence)
                self._enqueue_http(conn, sub.arn, sub.endpoint, (body, headers), now_ms)
                outcome.http = True
                outcome.counts["delivered"] += 1
            else:
                outcome.counts["undeliverable"] += 1
        return outcome

    def _envelope(self, topic: _Topic, sub: _Subscription, p: _Publication, message: str, sequence: str | None) -> str:
        document: dict[str, Any] = {"Type": "Notification", "MessageId": p.message_id}
        if sequence is not None:
            document["SequenceNumber"] = sequence
        document["TopicArn"] = topic.arn
        if p.subject is not None:
            document["Subject"] = p.subject
        document["Message"] = message
        document["Timestamp"] = p.timestamp
        document["SignatureVersion"] = topic.attributes.get("SignatureVersion", "1")
        document["Signature"] = self._sign(p.message_id, topic.arn, message)
        document["SigningCertURL"] = f"{self.base_url}/SimpleNotificationService-scte.pem"
        document["UnsubscribeURL"] = (
            f"{self.base_url}/?Action=Unsubscribe&SubscriptionArn={urllib.parse.quote(sub.arn, safe='')}"
        )
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

    def _sign(self, message_id: str, topic_arn: str, text: str) -> str:
        """A per-process HMAC in the Signature field: present and stable in shape, but not an AWS
        certificate signature (there is no AWS key to sign with), so clients must not verify it."""
        digest = hashlib.sha256(self._signing_key + f"{message_id}\n{topic_arn}\n{text}".encode()).digest()
        return base64.b64encode(digest).decode("ascii")

    def _deliver_sqs(
        self,
        conn: sqlite3.Connection,
        topic: _Topic,
        sub: _Subscription,
        p: _Publication,
        message: str,
        dedup_id: str | None,
        sequence: str | None,
        outcome: _Outcome,
    ) -> None:
        engine = self._engine
        name = self._queue_name(sub.endpoint)
        if name is None or not engine.queue_exists(name) or engine.queue_arn(name) != sub.endpoint:
            # SNS drops what it cannot deliver after its retries, or sends it to the subscription's DLQ.
            target = self._dead_letter_queue(sub)
            if target is None:
                outcome.counts["undeliverable"] += 1
                return
            name = target
            outcome.counts["dead_lettered"] += 1
        else:
            outcome.counts["delivered"] += 1
        fifo_queue = engine.is_fifo(name)
        raw = sub.raw
        request: dict[str, Any] = {
            "MessageBody": message if raw else self._envelope(topic, sub, p, message, sequence),
            "MessageAttributes": p.attributes if raw else None,
            "MessageGroupId": p.group_id,
            "MessageDeduplicationId": dedup_id if fifo_queue else None,
        }
        try:
            entry = engine._prepare(request)
            (result,) = engine._ops.send(conn, name, (entry,))
        except SqsError as exc:
            result = exc
        if isinstance(result, SqsError):
            raise invalid(
                f"Invalid parameter: Message could not be delivered to {engine.queue_arn(name)}: {result.message}"
            )
        outcome.queues.add(name)

    def _dead_letter_queue(self, sub: _Subscription) -> str | None:
        policy = sub.attributes.get("RedrivePolicy")
        if not policy:
            return None
        target = json.loads(policy).get("deadLetterTargetArn")
        name = self._queue_name(target) if isinstance(target, str) else None
        if name is None or not self._engine.queue_exists(name) or self._engine.queue_arn(name) != target:
            return None
        return name

    # -- HTTP/HTTPS delivery -------------------------------------------------------------------------

    def _http_payload(
        self, topic: _Topic, sub: _Subscription, p: _Publication, message: str, sequence: str | None
    ) -> tuple[str, dict[str, str]]:
        headers = {
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": p.message_id,
            "x-amz-sns-topic-arn": topic.arn,
            "x-amz-sns-subscription-arn": sub.arn,
        }
        if sub.raw:
            headers["x-amz-sns-rawdelivery"] = "true"
            return message, headers
        return self._envelope(topic, sub, p, message, sequence), headers

    @staticmethod
    def _enqueue_http(
        conn: sqlite3.Connection, sub_arn: str, endpoint: str, payload: tuple[str, dict[str, str]], now_ms: int
    ) -> None:
        body, headers = payload
        conn.execute(
            "INSERT INTO sns_deliveries (subscription_arn, endpoint, headers, payload, attempts, next_at) "
            "VALUES (?,?,?,?,0,?)",
            (sub_arn, endpoint, json.dumps(headers), body, now_ms),
        )

    def _kick(self) -> None:
        if self._closed:
            return
        self._wake.set()
        if self._deliverer is None or self._deliverer.done():
            self._deliverer = asyncio.create_task(self._deliver_loop())

    @staticmethod
    def _retry_policy(attributes: Mapping[str, str]) -> tuple[int, float]:
        """(retries, delay in seconds) from the subscription's DeliveryPolicy; SNS's defaults otherwise."""
        retries, delay = 3, 20.0
        text = attributes.get("DeliveryPolicy")
        if text:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                policy = json.loads(text)
                rule = policy.get("healthyRetryPolicy") or policy.get("http", {}).get("defaultHealthyRetryPolicy", {})
                retries = int(rule.get("numRetries", retries))
                delay = float(rule.get("minDelayTarget", delay))
        return retries, delay

    async def _deliver_loop(self) -> None:
        clock = self._engine.clock
        while not self._closed:
            self._wake.clear()
            now_ms = self._now_ms()
            rows = await self._run(
                lambda c, now_ms=now_ms: c.execute(
                    "SELECT d.id, d.subscription_arn, d.endpoint, d.headers, d.payload, d.attempts, s.attributes "
                    "FROM sns_deliveries d LEFT JOIN subscriptions s ON s.arn = d.subscription_arn "
                    "WHERE d.next_at<=? ORDER BY d.next_at, d.id LIMIT 16",
                    (now_ms,),
                ).fetchall()
            )
            if not rows:
                (next_at,) = await self._run(lambda c: c.execute("SELECT MIN(next_at) FROM sns_deliveries").fetchone())
                wait = 3600.0 if next_at is None else max(0.0, next_at / 1000 - clock.now())
                await clock.wait(self._wake, wait)
                continue
            statuses = await asyncio.gather(
                *(
                    asyncio.to_thread(_post, endpoint, payload, json.loads(headers))
                    for _i, _s, endpoint, headers, payload, _a, _x in rows
                )
            )
            counts, touched = await self._run(lambda c, r=rows, st=statuses: self._settle(c, r, st))
            for (topic_arn, key), n in counts.items():
                self._counter(topic_arn)[key] += n
            for queue in touched:
                self._engine._notify(queue)

    def _settle(
        self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], statuses: Sequence[int]
    ) -> tuple[Counter[tuple[str, str]], set[str]]:
        """Record the outcome of a round of posts: done, retry later, or given up (to the DLQ)."""
        now_ms = self._now_ms()
        touched: set[str] = set()
        counts: Counter[tuple[str, str]] = Counter()
        for (row_id, sub_arn, _endpoint, _headers, payload, attempts, sub_attrs), status in zip(
            rows, statuses, strict=True
        ):
            topic_arn = sub_arn.rsplit(":", 1)[0]
            if 200 <= status < 300:
                conn.execute("DELETE FROM sns_deliveries WHERE id=?", (row_id,))
                counts[topic_arn, "http_delivered"] += 1
                continue
            attrs = json.loads(sub_attrs) if sub_attrs else {}
            retries, delay = self._retry_policy(attrs)
            permanent = 400 <= status < 500 and status != 429
            if sub_attrs is None or permanent or attempts >= retries:
                conn.execute("DELETE FROM sns_deliveries WHERE id=?", (row_id,))
                counts[topic_arn, "http_failed"] += 1
                sub = _Subscription(sub_arn, topic_arn, "http", "", "", attrs, True, None, False)
                dlq = self._dead_letter_queue(sub) if sub_attrs is not None else None
                if dlq is not None:
                    entry = self._engine._prepare({"MessageBody": payload})
                    (result,) = self._engine._ops.send(conn, dlq, (entry,))
                    if not isinstance(result, SqsError):
                        touched.add(dlq)
                        counts[topic_arn, "dead_lettered"] += 1
                continue
            conn.execute(
                "UPDATE sns_deliveries SET attempts=attempts+1, next_at=? WHERE id=?",
                (now_ms + int(delay * 1000), row_id),
            )
        return counts, touched


def _failure(entry_id: str, exc: SqsError) -> dict[str, Any]:
    return {"Id": entry_id, "Code": exc.code, "Message": exc.message, "SenderFault": exc.sender}


def _post(endpoint: str, payload: str, headers: Mapping[str, str]) -> int:
    """POST one notification (in a worker thread); the HTTP status, or 0 when the endpoint is unreachable."""
    request = urllib.request.Request(endpoint, data=payload.encode("utf-8"), method="POST")
    request.add_header("Content-Type", "text/plain; charset=UTF-8")
    request.add_header("User-Agent", "Amazon Simple Notification Service Agent")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0
