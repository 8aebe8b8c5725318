"""Who may do what (`--auth strict`): each request checked against the policy of the queue or topic it names.

The request's principal is the one its SigV4 access key belongs to (`credentials.KeyStore`). An action on a
queue is `sqs:<Action>` on the queue's ARN (a batch is its single action: SendMessageBatch is
sqs:SendMessage), one on a topic `sns:<Action>` on the topic's ARN (PublishBatch is sns:Publish; a
subscription's actions are checked on its topic). The decision is `policy.allows`: explicit Deny wins, then
Allow, then only the owner (the admin principal). A refused request changes nothing: it is refused before
its handler runs, SQS with `AccessDenied`, SNS with `AuthorizationError`, both HTTP 403.

Account-level calls that a policy cannot grant: ListQueues and ListTopics show names only and are open to
every principal (a service finds its topic's ARN that way); ListSubscriptions and the message-move tasks are
the owner's. ConfirmSubscription is open: its token is the credential (as on AWS).

A policy being stored (CreateQueue, SetQueueAttributes, CreateTopic, SetTopicAttributes) must be one the
broker understands (`policy.parse`), else the request is refused as AWS refuses a malformed document. Only
here, in strict mode: the emulator mode (`--auth any`) enforces nothing and keeps any JSON object, as moto.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from scte.queue.engine import Engine
from scte.queue.errors import SqsError
from scte.queue.filter_policy import SnsError
from scte.queue.policy import PolicyError, Principal, Request, allows, parse
from scte.queue.server.actions import RequestContext, queue_name_from_url
from scte.queue.server.auth import access_denied
from scte.queue.server.sns_protocol import str_map

__all__ = ["authorize_sns", "authorize_sqs"]

_SQS_AS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_SQS_OPEN = frozenset(("ListQueues",))
_SQS_OWNER_ONLY = frozenset(("ListMessageMoveTasks", "CancelMessageMoveTask"))
_SQS_BY_NAME = frozenset(("CreateQueue", "GetQueueUrl"))
_SQS_SETS_ATTRIBUTES = frozenset(("CreateQueue", "SetQueueAttributes"))

_SNS_AS = {"PublishBatch": "Publish"}
_SNS_OPEN = frozenset(("ListTopics", "ConfirmSubscription"))
_SNS_BY_SUBSCRIPTION = frozenset(("Unsubscribe", "GetSubscriptionAttributes", "SetSubscriptionAttributes"))
_SNS_BY_RESOURCE = frozenset(("TagResource", "UntagResource", "ListTagsForResource"))


def _queue_of(ctx: RequestContext, action: str, params: Mapping[str, Any]) -> str | None:
    """The name of the queue a request names, None when it names none (or names it so that its handler
    will refuse it anyway: the request then fails there, having changed nothing)."""
    if action in _SQS_BY_NAME:
        name = params.get("QueueName")
        return name if isinstance(name, str) and name else None
    if action == "StartMessageMoveTask":
        arn = params.get("SourceArn")
        parts = arn.split(":") if isinstance(arn, str) else []
        return parts[5] if len(parts) == 6 and parts[2] == "sqs" else None
    url = params.get("QueueUrl") or ctx.path
    if not isinstance(url, str):
        return None
    try:
        return _queue_name(url, ctx.account_id)
    except SqsError:
        return None


def _check_policy(document: object, error: Callable[[str], SqsError]) -> None:
    """A policy about to be stored: one the broker enforces must be one it understands."""
    if not isinstance(document, str) or not document:
        return  # absent, or "" (removes the policy)
    try:
        parse(document)
    except PolicyError as exc:
        raise error(str(exc)) from None


def _bad_queue_policy(reason: str) -> SqsError:
    return SqsError("InvalidAttributeValue", f"Invalid value for the parameter Policy. Reason: {reason}.")


def _bad_topic_policy(reason: str) -> SqsError:
    return SnsError("InvalidParameter", f"Invalid parameter: Policy Error: {reason}")


def authorize_sqs(principal: Principal, action: str, params: Mapping[str, Any], ctx: RequestContext) -> None:
    """Return if `principal` may make this SQS request; raise `AccessDenied` otherwise. A policy the request
    would store must be one the broker can enforce (`InvalidAttributeValue` otherwise)."""
    if action in _SQS_OPEN:
        return
    if action in _SQS_SETS_ATTRIBUTES:
        attributes = params.get("Attributes")
        if isinstance(attributes, Mapping):
            _check_policy(attributes.get("Policy"), _bad_queue_policy)
    engine: Engine = ctx.engine
    name = None if action in _SQS_OWNER_ONLY else _queue_of(ctx, action, params)
    if name is None:
        if principal.admin:
            return
        raise access_denied(f"Access to {action} is denied for {principal.arn}.")
    if not _queue_allows(engine.queue_policy(name), principal, action, engine.region, ctx.account_id, name):
        raise access_denied(f"Access to the resource {ctx.queue_url(name)} is denied.")


@functools.lru_cache(maxsize=16384)
def _queue_allows(policy: str | None, principal: Principal, action: str, region: str, account: str, name: str) -> bool:
    """`allows` for an SQS action on a queue, cached as it is asked: the same service making the same call on
    the same queue (with the same policy) is one look-up, without building the ARN and the request."""
    arn = f"arn:aws:sqs:{region}:{account}:{name}"
    return allows(policy, Request(principal, "sqs:" + _SQS_AS.get(action, action), arn))


@functools.lru_cache(maxsize=4096)
def _queue_name(url: str, account_id: str) -> str:
    return queue_name_from_url(url, account_id)  # raises (uncached) for a URL that names no queue of ours


def _sns_resource(action: str, params: Mapping[str, Any], topic_arn: Any) -> str | None:
    if action == "CreateTopic":
        name = params.get("Name")
        return topic_arn(name) if isinstance(name, str) and name else None
    if action in _SNS_BY_SUBSCRIPTION:
        arn = params.get("SubscriptionArn")
        return arn.rsplit(":", 1)[0] if isinstance(arn, str) and arn.count(":") == 6 else None
    key = "ResourceArn" if action in _SNS_BY_RESOURCE else "TopicArn"
    arn = params.get(key)
    if arn is None and action == "Publish":
        arn = params.get("TargetArn")
    return arn if isinstance(arn, str) and arn.startswith("arn:") else None


async def authorize_sns(principal: Principal, action: str, params: Mapping[str, Any], engine: Engine) -> None:
    """Return if `principal` may make this SNS request; raise `AuthorizationError` otherwise. A policy the
    request would store must be one the broker can enforce (`InvalidParameter` otherwise)."""
    if action in _SNS_OPEN:
        return
    if action == "SetTopicAttributes" and params.get("AttributeName") == "Policy":
        _check_policy(params.get("AttributeValue"), _bad_topic_policy)
    elif action == "CreateTopic":
        _check_policy((str_map(params.get("Attributes")) or {}).get("Policy"), _bad_topic_policy)
    topics = engine.topics
    resource = _sns_resource(action, params, topics.topic_arn)
    policy_action = "SNS:" + _SNS_AS.get(action, action)
    if resource is None:
        if principal.admin:
            return
        raise _authorization_error(principal, policy_action, "*")
    policy = await topics.topic_policy(resource)
    if not allows(policy, Request(principal, "sns:" + _SNS_AS.get(action, action), resource)):
        raise _authorization_error(principal, policy_action, resource)


def _authorization_error(principal: Principal, action: str, resource: str) -> SnsError:
    return SnsError(
        "AuthorizationError",
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}",
        status=403,
    )
