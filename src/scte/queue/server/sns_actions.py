"""The SNS actions of the wire server: decode each action's members, call `engine.topics`, shape the result.

`dispatch` is the whole SNS request path, from the parsed form to the response: the app calls it for
the query-protocol requests `sns_protocol.is_sns_request` claims. Topics, subscriptions and fan-out
live in the engine (`scte.queue.topics`); this module only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from scte.queue.engine import Engine
from scte.queue.errors import SqsError
from scte.queue.filter_policy import SnsError
from scte.queue.policy import Principal
from scte.queue.server import sns_protocol as wire
from scte.queue.server.authorize import authorize_sns
from scte.queue.server.errors import Response, internal_error, service_unavailable, unknown_operation
from scte.queue.store import StoreClosed
from scte.queue.topics import Topics

log = logging.getLogger("scte.queue.server")

Tree = dict[str, Any]
Result = dict[str, Any] | None
Handler = Callable[[Topics, Tree], Awaitable[Result]]


def _s(p: Tree, name: str) -> Any:
    return wire.text(p.get(name))


def _missing(name: str) -> SnsError:
    return SnsError("InvalidParameter", f"Invalid parameter: {name}")


# -- topics ------------------------------------------------------------------------------------------------


async def create_topic(t: Topics, p: Tree) -> Result:
    attributes = wire.str_map(p.get("Attributes")) or {}
    policy = _s(p, "DataProtectionPolicy")
    if policy is not None:
        attributes["DataProtectionPolicy"] = policy
    return {"TopicArn": await t.create_topic(_s(p, "Name"), attributes, wire.tag_list(p.get("Tags")))}


async def delete_topic(t: Topics, p: Tree) -> Result:
    await t.delete_topic(_s(p, "TopicArn"))
    return None


async def list_topics(t: Topics, p: Tree) -> Result:
    arns, token = await t.list_topics(_s(p, "NextToken"))
    return {"Topics": [{"TopicArn": a} for a in arns], "NextToken": token}


async def get_topic_attributes(t: Topics, p: Tree) -> Result:
    return {"Attributes": await t.get_topic_attributes(_s(p, "TopicArn"))}


async def set_topic_attributes(t: Topics, p: Tree) -> Result:
    await t.set_topic_attributes(_s(p, "TopicArn"), _s(p, "AttributeName"), _s(p, "AttributeValue"))
    return None


async def add_permission(t: Topics, p: Tree) -> Result:
    await t.add_permission(
        _s(p, "TopicArn"),
        _s(p, "Label"),
        wire.str_list(p.get("AWSAccountId")) or [],
        wire.str_list(p.get("ActionName")) or [],
    )
    return None


async def remove_permission(t: Topics, p: Tree) -> Result:
    await t.remove_permission(_s(p, "TopicArn"), _s(p, "Label"))
    return None


# -- tags --------------------------------------------------------------------------------------------------


async def tag_resource(t: Topics, p: Tree) -> Result:
    await t.tag_resource(_s(p, "ResourceArn"), wire.tag_list(p.get("Tags")) or {})
    return {}


async def untag_resource(t: Topics, p: Tree) -> Result:
    await t.untag_resource(_s(p, "ResourceArn"), wire.str_list(p.get("TagKeys")) or [])
    return {}


async def list_tags_for_resource(t: Topics, p: Tree) -> Result:
    tags = await t.list_tags_for_resource(_s(p, "ResourceArn"))
    return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


# -- subscriptions -----------------------------------------------------------------------------------------


async def subscribe(t: Topics, p: Tree) -> Result:
    arn = await t.subscribe(
        _s(p, "TopicArn"),
        _s(p, "Protocol"),
        _s(p, "Endpoint"),
        wire.str_map(p.get("Attributes")),
        (_s(p, "ReturnSubscriptionArn") or "").lower() == "true",
    )
    return {"SubscriptionArn": arn}


async def confirm_subscription(t: Topics, p: Tree) -> Result:
    arn = await t.confirm_subscription(_s(p, "TopicArn"), _s(p, "Token"), _s(p, "AuthenticateOnUnsubscribe"))
    return {"SubscriptionArn": arn}


async def unsubscribe(t: Topics, p: Tree) -> Result:
    await t.unsubscribe(_s(p, "SubscriptionArn"))
    return None


async def list_subscriptions(t: Topics, p: Tree) -> Result:
    subs, token = await t.list_subscriptions(_s(p, "NextToken"))
    return {"Subscriptions": subs, "NextToken": token}


async def list_subscriptions_by_topic(t: Topics, p: Tree) -> Result:
    subs, token = await t.list_subscriptions_by_topic(_s(p, "TopicArn"), _s(p, "NextToken"))
    return {"Subscriptions": subs, "NextToken": token}


async def get_subscription_attributes(t: Topics, p: Tree) -> Result:
    return {"Attributes": await t.get_subscription_attributes(_s(p, "SubscriptionArn"))}


async def set_subscription_attributes(t: Topics, p: Tree) -> Result:
    await t.set_subscription_attributes(_s(p, "SubscriptionArn"), _s(p, "AttributeName"), _s(p, "AttributeValue"))
    return None


# -- publishing --------------------------------------------------------------------------------------------


async def publish(t: Topics, p: Tree) -> Result:
    return await t.publish(
        _s(p, "TopicArn"),
        _s(p, "Message"),
        subject=_s(p, "Subject"),
        message_attributes=wire.message_attributes(p.get("MessageAttributes")),
        message_structure=_s(p, "MessageStructure"),
        message_group_id=_s(p, "MessageGroupId"),
        message_deduplication_id=_s(p, "MessageDeduplicationId"),
        target_arn=_s(p, "TargetArn"),
        phone_number=_s(p, "PhoneNumber"),
    )


_ENTRY_STRINGS = ("Id", "Message", "Subject", "MessageStructure", "MessageDeduplicationId", "MessageGroupId")


async def publish_batch(t: Topics, p: Tree) -> Result:
    entries: list[dict[str, Any]] = []
    for node in wire.structures(p.get("PublishBatchRequestEntries")) or []:
        entry: dict[str, Any] = {k: node[k] for k in _ENTRY_STRINGS if isinstance(node.get(k), str)}
        attributes = wire.message_attributes(node.get("MessageAttributes"))
        if attributes is not None:
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    return await t.publish_batch(_s(p, "TopicArn"), entries)


ACTIONS: Mapping[str, Handler] = {
    "CreateTopic": create_topic,
    "DeleteTopic": delete_topic,
    "ListTopics": list_topics,
    "GetTopicAttributes": get_topic_attributes,
    "SetTopicAttributes": set_topic_attributes,
    "AddPermission": add_permission,
    "RemovePermission": remove_permission,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "Subscribe": subscribe,
    "ConfirmSubscription": confirm_subscription,
    "Unsubscribe": unsubscribe,
    "ListSubscriptions": list_subscriptions,
    "ListSubscriptionsByTopic": list_subscriptions_by_topic,
    "GetSubscriptionAttributes": get_subscription_attributes,
    "SetSubscriptionAttributes": set_subscription_attributes,
    "Publish": publish,
    "PublishBatch": publish_batch,
}
"""SNS action name -> handler (the 19 actions of topics, subscriptions, tags and publishing)."""


def _base_url(scope: Mapping[str, Any], fallback: str) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"host":
            return f"{scope.get('scheme', 'http')}://{value.decode('latin-1')}"
    return fallback


async def dispatch(
    scope: Mapping[str, Any],
    form: Mapping[str, str],
    request_id: str,
    engine: Callable[[], Engine],
    *,
    fallback_url: str,
    test_mode: bool,
    principal: Principal | None = None,
) -> Response:
    """Serve one SNS request. `engine()` gives the engine for it (or raises `service_unavailable`).
    With a `principal` (`--auth strict`), the topic's policy must allow the request first."""
    action = form.get("Action", "")
    try:
        handler = ACTIONS.get(action)
        if handler is None:
            raise unknown_operation(action)
        params = wire.tree(form)
        if principal is not None:
            await authorize_sns(principal, action, params, engine())
        topics = engine().topics
        # The URLs in notifications (SubscribeURL, UnsubscribeURL) point where clients reach this server.
        topics.base_url = _base_url(scope, fallback_url)
        if test_mode:
            topics.auto_confirm = True  # moto's suite expects http subscriptions confirmed at once
        result = await handler(topics, params)
        return wire.render(action, result, request_id)
    except SqsError as exc:
        return wire.render_error(exc, request_id)
    except StoreClosed:
        return wire.render_error(service_unavailable(), request_id)
    except Exception:
        log.exception("internal error in SNS %s", action)
        return wire.render_error(internal_error(), request_id)
