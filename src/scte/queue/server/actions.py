"""The 23 SQS actions, shared by both wire protocols.

Each action has an input schema (member names and types of the botocore model, plus the member's name
in the query protocol where it differs) and a handler `(context, params) -> result`. The JSON protocol
type-checks the request body against the schema; the query protocol builds the same structure from the
form. Handlers take and return the JSON protocol's shapes, except that binary attribute values are
`bytes` (as in the engine): each protocol encodes them (base64) on its way out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scte.queue import validation
from scte.queue.engine import Engine
from scte.queue.errors import SqsError, invalid_parameter, missing_parameter


@dataclass(frozen=True)
class Field:
    """A request member: its type and, for the query protocol, how it is spelt in the form.

    kinds: str, int, bool, strlist, strmap (str -> str), attrmap (message attributes), entries (list of
    structures described by `entry`).
    """

    kind: str
    query_name: str | None = None
    key_name: str = "Name"
    value_name: str = "Value"
    entry: Mapping[str, Field] = field(default_factory=dict)


@dataclass(slots=True)
class RequestContext:
    """What a handler needs besides its parameters."""

    engine: Engine
    account_id: str
    base_url: str  # scheme://host[:port] the client used, then /queue/<region> (region URLs); queue URLs start so
    path: str  # the request path; `/<account>/<queue>` names the queue when QueueUrl is absent
    queue: str | None = None  # the queue the request named, once known (request logs and metrics)
    trace_header: str | None = None  # the request's X-Amzn-Trace-Id header (SendMessage keeps it)

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/{self.account_id}/{name}"


Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    name: str
    schema: Mapping[str, Field]
    handler: Handler


def queue_does_not_exist() -> SqsError:
    # AWS's exact text (moto's suite and some clients compare it).
    return SqsError("QueueDoesNotExist", "The specified queue does not exist.")


def queue_name_from_url(url: str, account_id: str, region: str | None = None) -> str:
    """The queue name in a QueueUrl: `http(s)://any-host[:port]/queue/<region>/<account>/<name>`, the same
    without `/queue/<region>` (the old form, the region then being the request's), the path alone, or a name.

    The host and port are not checked (a client may reach us under any name); the account must be ours, and
    a region in the URL must be `region` when given (the engine the request was routed to: `url_region`).
    """
    path = urlsplit(url).path if "://" in url else url
    parts = [p for p in path.split("/") if p]
    if len(parts) == 1 and "://" not in url:
        return parts[0]
    if len(parts) == 2 and parts[0] == account_id:
        return parts[1]
    if len(parts) == 4 and parts[0] == "queue" and parts[2] == account_id and region in (None, parts[1]):
        return parts[3]
    raise queue_does_not_exist()


def url_region(url: object) -> str | None:
    """The region a queue URL (or request path) names: `.../queue/<region>/<account>/<name>`; None for the
    old form, which names none."""
    if not isinstance(url, str) or "/queue/" not in url:
        return None
    parts = [p for p in (urlsplit(url).path if "://" in url else url).split("/") if p]
    return parts[1] if len(parts) == 4 and parts[0] == "queue" else None


def resolve_queue(ctx: RequestContext, params: Mapping[str, Any]) -> str:
    """The name of an existing queue from QueueUrl, or from the request path when QueueUrl is absent."""
    url = params.get("QueueUrl")
    if not url:
        parts = [p for p in ctx.path.split("/") if p]
        if len(parts) != 2 and not (len(parts) == 4 and parts[0] == "queue"):
            raise missing_parameter("QueueUrl")
        url = ctx.path
    name = ctx.queue = queue_name_from_url(url, ctx.account_id, ctx.engine.region)
    if not ctx.engine.queue_exists(name):
        raise queue_does_not_exist()
    return name


def _opt_int(value: Any) -> Any:
    """Integers arrive as int (JSON) or text (query); the engine validates both."""
    return value


# -- queues ------------------------------------------------------------------------------------------------


async def create_queue(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("QueueName")
    if name is None:
        raise missing_parameter("QueueName")
    if not name:
        validation.validate_queue_name(name, fifo=False)  # AWS: an empty name is an invalid one
    ctx.queue = name
    created = await ctx.engine.create_queue(name, p.get("Attributes") or {}, p.get("tags") or {})
    return {"QueueUrl": ctx.queue_url(created)}


async def delete_queue(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.engine.delete_queue(resolve_queue(ctx, p))
    return {}


async def get_queue_url(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("QueueName")
    if not name:
        raise missing_parameter("QueueName")
    ctx.queue = name
    owner = p.get("QueueOwnerAWSAccountId")
    if (owner and owner != ctx.account_id) or not ctx.engine.queue_exists(name):
        raise queue_does_not_exist()
    return {"QueueUrl": ctx.queue_url(await ctx.engine.get_queue_url_name(name))}


async def list_queues(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names, token = await ctx.engine.list_queues(
        p.get("QueueNamePrefix"), _opt_int(p.get("MaxResults")), p.get("NextToken")
    )
    out: dict[str, Any] = {}
    if names:
        out["QueueUrls"] = [ctx.queue_url(n) for n in names]
    if token:
        out["NextToken"] = token
    return out


async def get_queue_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = resolve_queue(ctx, p)
    names = p.get("AttributeNames")
    attributes = await ctx.engine.get_queue_attributes(name, names if names is not None else ())
    return {"Attributes": attributes} if attributes else {}


async def set_queue_attributes(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = resolve_queue(ctx, p)
    attributes = p.get("Attributes")
    if attributes is None:
        raise missing_parameter("Attributes")
    await ctx.engine.set_queue_attributes(name, attributes)
    return {}


async def purge_queue(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.engine.purge_queue(resolve_queue(ctx, p))
    return {}


async def tag_queue(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.engine.tag_queue(resolve_queue(ctx, p), p.get("Tags") or {})
    return {}


async def untag_queue(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("TagKeys") == []:  # given, but empty (AWS's wording)
        raise invalid_parameter("Tag keys must be between 1 and 128 characters in length.")
    await ctx.engine.untag_queue(resolve_queue(ctx, p), p.get("TagKeys") or [])
    return {}


async def list_queue_tags(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = await ctx.engine.list_queue_tags(resolve_queue(ctx, p))
    return {"Tags": tags} if tags else {}


async def list_dead_letter_source_queues(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    names, token = await ctx.engine.list_dead_letter_source_queues(
        resolve_queue(ctx, p), _opt_int(p.get("MaxResults")), p.get("NextToken")
    )
    out: dict[str, Any] = {"queueUrls": [ctx.queue_url(n) for n in names]}
    if token:
        out["NextToken"] = token
    return out


async def add_permission(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    if p.get("AWSAccountIds") == []:  # given, but empty (AWS's wording)
        raise invalid_parameter("Value [] for parameter PrincipalId is invalid. Reason: Unable to verify.")
    await ctx.engine.add_permission(
        resolve_queue(ctx, p), p.get("Label") or "", p.get("AWSAccountIds") or [], p.get("Actions") or []
    )
    return {}


async def remove_permission(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.engine.remove_permission(resolve_queue(ctx, p), p.get("Label") or "")
    return {}


# -- messages ----------------------------------------------------------------------------------------------


async def send_message(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = resolve_queue(ctx, p)
    body = p.get("MessageBody")
    if body is None:
        raise missing_parameter("MessageBody")
    system = p.get("MessageSystemAttributes")
    if ctx.trace_header and not (system and "AWSTraceHeader" in system):
        # AWS keeps the X-Ray header of a SendMessage as the AWSTraceHeader system attribute (an explicit
        # MessageSystemAttributes.AWSTraceHeader wins).
        system = {**(system or {}), "AWSTraceHeader": {"DataType": "String", "StringValue": ctx.trace_header}}
    return await ctx.engine.send_message(
        name,
        body,
        delay_seconds=_opt_int(p.get("DelaySeconds")),
        message_attributes=p.get("MessageAttributes"),
        message_system_attributes=system,
        group_id=p.get("MessageGroupId"),
        deduplication_id=p.get("MessageDeduplicationId"),
    )


def send_message_batch(ctx: RequestContext, p: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    # The engine's coroutine itself (no coroutine of our own around it): the caller awaits it in the same try.
    return ctx.engine.send_message_batch(resolve_queue(ctx, p), p.get("Entries") or [])


async def receive_message(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    messages = await ctx.engine.receive_message(
        resolve_queue(ctx, p),
        max_number=_opt_int(p.get("MaxNumberOfMessages")),
        visibility_timeout=_opt_int(p.get("VisibilityTimeout")),
        wait_time_seconds=_opt_int(p.get("WaitTimeSeconds")),
        attribute_names=p.get("AttributeNames") or (),
        message_system_attribute_names=p.get("MessageSystemAttributeNames") or (),
        message_attribute_names=p.get("MessageAttributeNames") or (),
        receive_request_attempt_id=p.get("ReceiveRequestAttemptId"),
    )
    return {"Messages": messages} if messages else {}


def _single_call_handle_error(exc: SqsError) -> SqsError:
    """AWS words an invalid handle differently in DeleteMessage/ChangeMessageVisibility than in batches."""
    if exc.code == "ReceiptHandleIsInvalid":
        return SqsError("ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
    return exc


async def delete_message(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = resolve_queue(ctx, p)
    try:
        await ctx.engine.delete_message(name, p.get("ReceiptHandle") or "")
    except SqsError as exc:
        raise _single_call_handle_error(exc) from None
    return {}


def delete_message_batch(ctx: RequestContext, p: dict[str, Any]) -> Awaitable[dict[str, Any]]:
    return ctx.engine.delete_message_batch(resolve_queue(ctx, p), p.get("Entries") or [])  # as send_message_batch


async def change_message_visibility(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = resolve_queue(ctx, p)
    try:
        await ctx.engine.change_message_visibility(
            name, p.get("ReceiptHandle") or "", _opt_int(p.get("VisibilityTimeout"))
        )
    except SqsError as exc:
        raise _single_call_handle_error(exc) from None
    return {}


async def change_message_visibility_batch(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return await ctx.engine.change_message_visibility_batch(resolve_queue(ctx, p), p.get("Entries") or [])


# -- message move tasks ------------------------------------------------------------------------------------


async def start_message_move_task(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    handle = await ctx.engine.start_message_move_task(
        p.get("SourceArn") or "", p.get("DestinationArn"), _opt_int(p.get("MaxNumberOfMessagesPerSecond"))
    )
    return {"TaskHandle": handle}


async def cancel_message_move_task(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    moved = await ctx.engine.cancel_message_move_task(p.get("TaskHandle") or "")
    return {"ApproximateNumberOfMessagesMoved": moved}


async def list_message_move_tasks(ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.engine.list_message_move_tasks(p.get("SourceArn") or "", _opt_int(p.get("MaxResults")))
    return {"Results": results}


# -- schemas -----------------------------------------------------------------------------------------------

S = Field("str")
I = Field("int")  # noqa: E741 - a type tag, read as in the model
QUEUE_URL = {"QueueUrl": S}
ATTRIBUTES = Field("strmap", "Attribute")
MESSAGE_ATTRIBUTES = Field("attrmap", "MessageAttribute")
SYSTEM_ATTRIBUTES = Field("attrmap", "MessageSystemAttribute")

SEND_ENTRY = {
    "Id": S,
    "MessageBody": S,
    "DelaySeconds": I,
    "MessageAttributes": MESSAGE_ATTRIBUTES,
    "MessageSystemAttributes": SYSTEM_ATTRIBUTES,
    "MessageDeduplicationId": S,
    "MessageGroupId": S,
}

_SPECS: list[tuple[str, Mapping[str, Field], Handler]] = [
    (
        "CreateQueue",
        {"QueueName": S, "Attributes": ATTRIBUTES, "tags": Field("strmap", "Tag", "Key", "Value")},
        create_queue,
    ),
    ("DeleteQueue", QUEUE_URL, delete_queue),
    ("GetQueueUrl", {"QueueName": S, "QueueOwnerAWSAccountId": S}, get_queue_url),
    ("ListQueues", {"QueueNamePrefix": S, "NextToken": S, "MaxResults": I}, list_queues),
    (
        "GetQueueAttributes",
        {**QUEUE_URL, "AttributeNames": Field("strlist", "AttributeName")},
        get_queue_attributes,
    ),
    ("SetQueueAttributes", {**QUEUE_URL, "Attributes": ATTRIBUTES}, set_queue_attributes),
    ("PurgeQueue", QUEUE_URL, purge_queue),
    (
        "SendMessage",
        {k: v for k, v in SEND_ENTRY.items() if k != "Id"} | QUEUE_URL,
        send_message,
    ),
    (
        "SendMessageBatch",
        {**QUEUE_URL, "Entries": Field("entries", "SendMessageBatchRequestEntry", entry=SEND_ENTRY)},
        send_message_batch,
    ),
    (
        "ReceiveMessage",
        {
            **QUEUE_URL,
            "AttributeNames": Field("strlist", "AttributeName"),
            "MessageSystemAttributeNames": Field("strlist", "MessageSystemAttributeName"),
            "MessageAttributeNames": Field("strlist", "MessageAttributeName"),
            "MaxNumberOfMessages": I,
            "VisibilityTimeout": I,
            "WaitTimeSeconds": I,
            "ReceiveRequestAttemptId": S,
        },
        receive_message,
    ),
    ("DeleteMessage", {**QUEUE_URL, "ReceiptHandle": S}, delete_message),
    (
        "DeleteMessageBatch",
        {
            **QUEUE_URL,
            "Entries": Field("entries", "DeleteMessageBatchRequestEntry", entry={"Id": S, "ReceiptHandle": S}),
        },
        delete_message_batch,
    ),
    (
        "ChangeMessageVisibility",
        {**QUEUE_URL, "ReceiptHandle": S, "VisibilityTimeout": I},
        change_message_visibility,
    ),
    (
        "ChangeMessageVisibilityBatch",
        {
            **QUEUE_URL,
            "Entries": Field(
                "entries",
                "ChangeMessageVisibilityBatchRequestEntry",
                entry={"Id": S, "ReceiptHandle": S, "VisibilityTimeout": I},
            ),
        },
        change_message_visibility_batch,
    ),
    (
        "ListDeadLetterSourceQueues",
        {**QUEUE_URL, "NextToken": S, "MaxResults": I},
        list_dead_letter_source_queues,
    ),
    ("TagQueue", {**QUEUE_URL, "Tags": Field("strmap", "Tag", "Key", "Value")}, tag_queue),
    ("UntagQueue", {**QUEUE_URL, "TagKeys": Field("strlist", "TagKey")}, untag_queue),
    ("ListQueueTags", QUEUE_URL, list_queue_tags),
    (
        "AddPermission",
        {
            **QUEUE_URL,
            "Label": S,
            "AWSAccountIds": Field("strlist", "AWSAccountId"),
            "Actions": Field("strlist", "ActionName"),
        },
        add_permission,
    ),
    ("RemovePermission", {**QUEUE_URL, "Label": S}, remove_permission),
    (
        "StartMessageMoveTask",
        {"SourceArn": S, "DestinationArn": S, "MaxNumberOfMessagesPerSecond": I},
        start_message_move_task,
    ),
    ("ListMessageMoveTasks", {"SourceArn": S, "MaxResults": I}, list_message_move_tasks),
    ("CancelMessageMoveTask", {"TaskHandle": S}, cancel_message_move_task),
]

ACTIONS: dict[str, Action] = {name: Action(name, schema, handler) for name, schema, handler in _SPECS}
"""Action name -> schema and handler; the same table serves the JSON and the query protocol."""
