"""The SNS query protocol on the broker's port: form-encoded `Action=...&Version=2010-03-31`, XML out.

SNS and SQS share the port and the path `/`. A request is SNS's when its SigV4 credential scope names
the service `sns` (`Authorization: ... Credential=AKID/20240101/us-east-1/sns/aws4_request`, or a
presigned `X-Amz-Credential`); without a signature, when its `Version` is `2010-03-31`; without either,
when its action is one only SNS has (the unsigned `GET /?Action=ConfirmSubscription&TopicArn=..&Token=..`
and `GET /?Action=Unsubscribe&SubscriptionArn=..` of the URLs in notifications).

Requests are decoded as botocore's query serializer writes them (the SNS model's shapes are not
flattened): lists are `Name.member.N`, maps `Name.entry.N.key` / `Name.entry.N.value` (message
attributes: `MessageAttributes.entry.N.Name` / `.Value.DataType|StringValue|BinaryValue`), batch entries
`PublishBatchRequestEntries.member.N.<Member>`. Responses are `<XResponse xmlns="http://sns.amazonaws.com/
doc/2010-03-31/"><XResult>...</XResult><ResponseMetadata><RequestId>` with lists as `<member>` elements
and maps as `<entry><key/><value/></entry>`; errors are `<ErrorResponse><Error><Type>Sender|Receiver</Type>
<Code/><Message/></Error><RequestId/></ErrorResponse>` with the error's HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from scte.queue.errors import SqsError
from scte.queue.filter_policy import invalid
from scte.queue.server.errors import XML_CONTENT_TYPE, Headers, Response
from scte.queue.server.query_protocol import Tree, xml_scalar

# The form helpers the SNS actions use, shared with the SQS query protocol (re-exported).
from scte.queue.server.query_protocol import text as text
from scte.queue.server.query_protocol import tree as tree
from scte.queue.server.xml import escape

VERSION = "2010-03-31"
SERVICE = "sns"
XML_NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"

# Actions SNS has and SQS has not (AddPermission / RemovePermission are both services').
_SNS_ONLY_HINTS = frozenset(
    {
        "ConfirmSubscription",
        "Unsubscribe",
        "CreateTopic",
        "DeleteTopic",
        "ListTopics",
        "Subscribe",
        "Publish",
        "PublishBatch",
        "ListSubscriptions",
        "ListSubscriptionsByTopic",
        "GetTopicAttributes",
        "SetTopicAttributes",
        "GetSubscriptionAttributes",
        "SetSubscriptionAttributes",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    }
)
_CREDENTIAL = re.compile(r"Credential=[^/,\s]*/[0-9]{8}/([^/,\s]*)/([^/,\s]*)/aws4_request")


def _header(scope: Mapping[str, Any], wanted: bytes) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == wanted:
            text: str = value.decode("latin-1")
            return text
    return None


def signing_scope(scope: Mapping[str, Any], form: Mapping[str, str]) -> tuple[str, str] | None:
    """(region, service) of the request's SigV4 credential scope, when it is signed."""
    auth = _header(scope, b"authorization")
    if auth:
        match = _CREDENTIAL.search(auth)
        if match:
            return match.group(1), match.group(2)
    credential = form.get("X-Amz-Credential")
    if credential:
        parts = credential.split("/")
        if len(parts) == 5:
            return parts[2], parts[3]
    return None


def is_sns_request(scope: Mapping[str, Any], form: Mapping[str, str]) -> bool:
    """Whether a query-protocol request is for SNS (see the module docstring)."""
    signed = signing_scope(scope, form)
    if signed is not None:
        return signed[1] == SERVICE
    version = form.get("Version")
    if version:
        return version == VERSION
    return form.get("Action", "") in _SNS_ONLY_HINTS


# -- requests ----------------------------------------------------------------------------------------------


def _numbered(node: object, wrapper: str) -> list[Any]:
    """The items of a non-flattened list or map (`X.member.N` / `X.entry.N`), in index order."""
    if not isinstance(node, dict):
        return []
    items = node.get(wrapper)
    if not isinstance(items, dict):
        return []
    numbered = [(int(k), v) for k, v in items.items() if k.isascii() and k.isdigit()]
    return [v for _i, v in sorted(numbered, key=lambda kv: kv[0])]


def str_list(node: object) -> list[str] | None:
    """`X.member.N` strings; None when the member is absent."""
    if node is None:
        return None
    return [v for v in _numbered(node, "member") if isinstance(v, str)]


def str_map(node: object) -> dict[str, str] | None:
    """`X.entry.N.key` / `X.entry.N.value`; None when the member is absent."""
    if node is None:
        return None
    out: dict[str, str] = {}
    for pair in _numbered(node, "entry"):
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out[pair["key"]] = text(pair.get("value")) or ""
    return out


def tag_list(node: object) -> dict[str, str] | None:
    """`Tags.member.N.Key` / `.Value` as a dict (the engine's shape); None when absent."""
    if node is None:
        return None
    out: dict[str, str] = {}
    for tag in _numbered(node, "member"):
        if isinstance(tag, dict):
            key = tag.get("Key")
            if not isinstance(key, str):
                raise invalid("Invalid parameter: Tags Reason: a tag has no key")
            out[key] = text(tag.get("Value")) or ""
    return out


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Invalid parameter: MessageAttributes Reason: a BinaryValue is not valid base64") from None


def message_attributes(node: object) -> dict[str, dict[str, Any]] | None:
    """`MessageAttributes.entry.N.Name` / `.Value.{DataType,StringValue,BinaryValue}` (binary decoded)."""
    if node is None:
        return None
    out: dict[str, dict[str, Any]] = {}
    for pair in _numbered(node, "entry"):
        if not isinstance(pair, dict) or not isinstance(pair.get("Name"), str):
            continue
        value = pair.get("Value")
        value = value if isinstance(value, dict) else {}
        attribute: dict[str, Any] = {}
        for key in ("DataType", "StringValue"):
            if isinstance(value.get(key), str):
                attribute[key] = value[key]
        if isinstance(value.get("BinaryValue"), str):
            attribute["BinaryValue"] = _b64(value["BinaryValue"])
        out[pair["Name"]] = attribute
    return out


def structures(node: object) -> list[Tree] | None:
    """`X.member.N.<Member>` structures, as trees; None when absent."""
    if node is None:
        return None
    return [e for e in _numbered(node, "member") if isinstance(e, dict)]


# -- responses ---------------------------------------------------------------------------------------------

# Result members that are maps (`<entry><key/><value/></entry>`); other dicts are structures.
_MAPS = frozenset({"Attributes"})


def _members(data: Mapping[str, Any], out: list[str]) -> None:
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, list):
            out.append(f"<{key}>")
            _items(value, out)
            out.append(f"</{key}>")
        elif isinstance(value, dict):
            out.append(f"<{key}>")
            if key in _MAPS:
                for k, v in value.items():
                    out.append(f"<entry><key>{escape(str(k))}</key><value>{xml_scalar(v)}</value></entry>")
            else:
                _members(value, out)
            out.append(f"</{key}>")
        else:
            out.append(f"<{key}>{xml_scalar(value)}</{key}>")


def _items(values: Iterable[Any], out: list[str]) -> None:
    for value in values:
        out.append("<member>")
        if isinstance(value, dict):
            _members(value, out)
        else:
            out.append(xml_scalar(value))
        out.append("</member>")


def render(action: str, result: Mapping[str, Any] | None, request_id: str) -> Response:
    """`<ActionResponse>`; `result` None for actions whose output has no members (no `<ActionResult>`)."""
    parts = [f'<?xml version="1.0"?><{action}Response xmlns="{XML_NAMESPACE}">']
    if result is not None:
        parts.append(f"<{action}Result>")
        _members(result, parts)
        parts.append(f"</{action}Result>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
    headers: Headers = [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return 200, headers, "".join(parts).encode("utf-8")


def render_error(error: SqsError, request_id: str) -> Response:
    fault = "Sender" if error.sender else "Receiver"
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>{fault}</Type>'
        f"<Code>{escape(error.query_code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    headers: Headers = [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return error.status, headers, body
