"""The catalog part of `Topics`: topics (create, delete, list, attributes, permissions, tags) and
subscriptions (subscribe, confirm, unsubscribe, list, attributes), stored in tables `topics` and
`subscriptions`."""

from __future__ import annotations

import json
import secrets
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from scte.queue.topics.attributes import (
    DEFAULT_EFFECTIVE_DELIVERY_POLICY,
    PERMISSION_ACTIONS,
    SUBSCRIPTION_ATTRIBUTES,
    apply_subscription_attributes,
    boolean,
    check_endpoint,
    default_policy,
    subscription_attribute,
    topic_attribute,
    validate_tags,
)
from scte.queue.topics.base import TopicsBase
from scte.queue.topics.envelope import confirmation
from scte.queue.topics.errors import invalid
from scte.queue.topics.http_delivery import enqueue_http
from scte.queue.topics.limits import (
    FIFO_TOPIC_NAME,
    NEEDS_CONFIRMATION,
    PAGE_SIZE,
    PENDING,
    PENDING_LISTED,
    TOPIC_NAME,
)
from scte.queue.topics.records import (
    SUBSCRIPTION_COLUMNS,
    TOPIC_COLUMNS,
    Subscription,
    Topic,
    load_tagged_topic,
    save_topic,
    subscription_of,
    topic_of,
)


def page_start(next_token: str | None) -> int:
    if not next_token:
        return 0
    if not (next_token.isascii() and next_token.isdigit()):  # "²".isdigit() is true, int("²") fails
        raise invalid("Invalid parameter: NextToken")
    return int(next_token)


def page(items: list[Any], start: int) -> tuple[list[Any], str | None]:
    chunk = items[start : start + PAGE_SIZE]
    more = start + PAGE_SIZE < len(items)
    return chunk, (str(start + PAGE_SIZE) if more else None)


def listed(sub: Subscription) -> dict[str, str]:
    """A subscription as ListSubscriptions(ByTopic) shows it."""
    return {
        "SubscriptionArn": sub.arn if sub.confirmed else PENDING_LISTED,
        "Owner": sub.owner,
        "Protocol": sub.protocol,
        "Endpoint": sub.endpoint,
        "TopicArn": sub.topic_arn,
    }


class Catalog(TopicsBase):
    # -- topics --------------------------------------------------------------------------------------------

    async def create_topic(
        self, name: str, attributes: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """CreateTopic: the topic's ARN. Idempotent: an existing topic with the same name is returned,
        unless the request names attributes or tags it does not have."""
        attrs = dict(attributes or {})
        fifo = boolean("FifoTopic", attrs["FifoTopic"]) == "true" if "FifoTopic" in attrs else False
        if not isinstance(name, str) or not (FIFO_TOPIC_NAME if fifo else TOPIC_NAME).fullmatch(name):
            if fifo:
                raise invalid(
                    "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase "
                    "ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."
                )
            raise invalid(
                "Topic names must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, "
                "and hyphens, and must be between 1 and 256 characters long."
            )
        clean = {k: topic_attribute(k, v, fifo) for k, v in attrs.items()}
        tag_map = dict(tags or {})
        validate_tags(tag_map)
        arn = self.topic_arn(name)

        def create(conn: sqlite3.Connection) -> str:
            row = conn.execute(f"SELECT {TOPIC_COLUMNS} FROM topics WHERE arn=?", (arn,)).fetchone()
            if row is not None:
                existing = topic_of(row)
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
            stored = {"DisplayName": "", "DeliveryPolicy": "", "Policy": default_policy(arn, self._account)}
            if fifo:
                stored["ContentBasedDeduplication"] = "false"
            stored.update({k: v for k, v in clean.items() if k != "FifoTopic"})
            conn.execute(
                "INSERT INTO topics (name, arn, fifo, attributes, tags, created) VALUES (?,?,?,?,?,?)",
                (name, arn, int(fifo), json.dumps(stored), json.dumps(tag_map), self._now_ms() // 1000),
            )
            return arn

        try:
            result: str = await self._run(create)
        finally:
            self._topics_changed()
        return result

    async def delete_topic(self, topic_arn: str) -> None:
        """DeleteTopic: the topic and its subscriptions. Deleting a missing topic succeeds."""
        arn = self._check_arn(topic_arn, action="DeleteTopic")

        def delete(conn: sqlite3.Connection) -> None:
            subs = [r[0] for r in conn.execute("SELECT arn FROM subscriptions WHERE topic_arn=?", (arn,))]
            if subs:
                conn.executemany("DELETE FROM sns_deliveries WHERE subscription_arn=?", [(s,) for s in subs])
                conn.executemany("DELETE FROM sns_region_deliveries WHERE subscription_arn=?", [(s,) for s in subs])
            conn.execute("DELETE FROM subscriptions WHERE topic_arn=?", (arn,))
            conn.execute("DELETE FROM topic_dedup WHERE topic_arn=?", (arn,))
            conn.execute("DELETE FROM topics WHERE arn=?", (arn,))

        try:
            await self._run(delete)
        finally:
            self._topics_changed()
        self._counters.pop(arn, None)

    async def list_topics(self, next_token: str | None = None) -> tuple[list[str], str | None]:
        """ListTopics: topic ARNs in creation order, pages of 100 joined by `next_token`."""
        start = page_start(next_token)
        arns = await self._run(lambda c: [r[0] for r in c.execute("SELECT arn FROM topics ORDER BY rowid")])
        return page(arns, start)

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
            topic.attributes[name] = topic_attribute(name, "" if value is None else value, topic.fifo)
            save_topic(conn, topic)

        try:
            await self._run(apply)
        finally:
            self._topics_changed()

    async def add_permission(
        self, topic_arn: str, label: str, account_ids: Sequence[str], action_names: Sequence[str]
    ) -> None:
        arn = self._check_arn(topic_arn, action="AddPermission")
        if not label:
            raise invalid("Invalid parameter: Label")
        if not account_ids or not action_names:
            raise invalid("Invalid parameter: AWSAccountId and ActionName are required")
        if any(a not in PERMISSION_ACTIONS for a in action_names):
            raise invalid("Policy statement action out of service scope!")

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._topic(conn, arn)
            policy = json.loads(topic.attributes.get("Policy") or default_policy(arn, self._account))
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
            save_topic(conn, topic)

        try:
            await self._run(apply)
        finally:
            self._topics_changed()

    async def remove_permission(self, topic_arn: str, label: str) -> None:
        arn = self._check_arn(topic_arn, action="RemovePermission")

        def apply(conn: sqlite3.Connection) -> None:
            topic = self._topic(conn, arn)
            policy = json.loads(topic.attributes.get("Policy") or default_policy(arn, self._account))
            policy["Statement"] = [s for s in policy.get("Statement", []) if s.get("Sid") != label]
            topic.attributes["Policy"] = json.dumps(policy, separators=(",", ":"))
            save_topic(conn, topic)

        try:
            await self._run(apply)
        finally:
            self._topics_changed()

    # -- tags ----------------------------------------------------------------------------------------------

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        tag_map = dict(tags)

        def apply(conn: sqlite3.Connection) -> None:
            topic = load_tagged_topic(conn, resource_arn)
            merged = {**topic.tags, **tag_map}
            validate_tags(merged)
            topic.tags = merged
            save_topic(conn, topic)

        try:
            await self._run(apply)
        finally:
            self._topics_changed()

    async def untag_resource(self, resource_arn: str, tag_keys: Sequence[str]) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            topic = load_tagged_topic(conn, resource_arn)
            for key in tag_keys:
                topic.tags.pop(key, None)
            save_topic(conn, topic)

        try:
            await self._run(apply)
        finally:
            self._topics_changed()

    async def list_tags_for_resource(self, resource_arn: str) -> dict[str, str]:
        """The topic's tags in the order they were first set."""
        topic: Topic = await self._run(lambda c: load_tagged_topic(c, resource_arn))
        return topic.tags

    # -- subscriptions -------------------------------------------------------------------------------------

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
        validated = apply_subscription_attributes({"RawMessageDelivery": "false"}, attrs)
        confirm_now = protocol not in NEEDS_CONFIRMATION or self.auto_confirm
        now_ms = self._now_ms()

        def create(conn: sqlite3.Connection) -> tuple[str, bool]:
            topic = self._topic(conn, arn)
            check_endpoint(topic, protocol, endpoint)
            row = conn.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? AND protocol=? AND endpoint=?",
                (arn, protocol, endpoint),
            ).fetchone()
            if row is not None:
                existing = subscription_of(row)
                if attrs and apply_subscription_attributes(existing.attributes, attrs) != existing.attributes:
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
                message = confirmation(
                    arn, token, now=self._engine.clock.now(), base_url=self.base_url, signer=self._signer
                )
                enqueue_http(conn, sub_arn, endpoint, message, now_ms)
            return sub_arn, confirm_now

        sub_arn, confirmed = await self._run(create)
        if not confirmed and protocol in ("http", "https"):
            self._http_worker.kick()
        if confirmed or return_subscription_arn:
            return str(sub_arn)
        return PENDING

    async def confirm_subscription(
        self, topic_arn: str, token: str, authenticate_on_unsubscribe: str | bool | None = None
    ) -> str:
        """ConfirmSubscription: the subscription ARN the token was sent for."""
        arn = self._check_arn(topic_arn, action="ConfirmSubscription")
        if not token:
            raise invalid("Invalid parameter: Token")
        authenticated = (
            authenticate_on_unsubscribe is not None
            and boolean("AuthenticateOnUnsubscribe", authenticate_on_unsubscribe) == "true"
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
            conn.execute("DELETE FROM sns_region_deliveries WHERE subscription_arn=?", (subscription_arn,))
            conn.execute("UPDATE topics SET deleted_subscriptions=deleted_subscriptions+1 WHERE arn=?", (row[0],))

        await self._run(delete)

    async def list_subscriptions(self, next_token: str | None = None) -> tuple[list[dict[str, str]], str | None]:
        """ListSubscriptions: in creation order, pages of 100."""
        start = page_start(next_token)
        subs = await self._run(
            lambda c: [
                subscription_of(r)
                for r in c.execute(f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY rowid")
            ]
        )
        chunk, token = page(subs, start)
        return [listed(s) for s in chunk], token

    async def list_subscriptions_by_topic(
        self, topic_arn: str, next_token: str | None = None
    ) -> tuple[list[dict[str, str]], str | None]:
        arn = self._check_arn(topic_arn, action="ListSubscriptionsByTopic")
        start = page_start(next_token)

        def read(conn: sqlite3.Connection) -> list[Subscription]:
            self._topic(conn, arn)
            return [
                subscription_of(r)
                for r in conn.execute(
                    f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn=? ORDER BY rowid", (arn,)
                )
            ]

        chunk, token = page(await self._run(read), start)
        return [listed(s) for s in chunk], token

    async def get_subscription_attributes(self, subscription_arn: str) -> dict[str, str]:
        sub: Subscription = await self._run(lambda c: self._subscription(c, subscription_arn))
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
        if not name or name not in SUBSCRIPTION_ATTRIBUTES:
            raise invalid("Invalid parameter: AttributeName")

        def apply(conn: sqlite3.Connection) -> None:
            sub = self._subscription(conn, subscription_arn)
            attrs = dict(sub.attributes)
            subscription_attribute(attrs, name, value)
            conn.execute("UPDATE subscriptions SET attributes=? WHERE arn=?", (json.dumps(attrs), sub.arn))

        await self._run(apply)
