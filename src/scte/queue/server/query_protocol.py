"""The SQS query protocol: form-encoded `Action=...&Version=2012-11-05&...`, XML responses.

Members are spelt as in the pre-JSON model of SQS (the query-compatibility names botocore and moto
know): lists are flattened and numbered from 1 (`AttributeName.1`), maps are numbered pairs
(`Attribute.1.Name` / `Attribute.1.Value`, `Tag.1.Key` / `Tag.1.Value`), message attributes nest their
value (`MessageAttribute.1.Value.StringValue`), batch entries nest their members
(`SendMessageBatchRequestEntry.1.MessageAttribute.1.Name`). The JSON member name is accepted wherever the
query name is expected. Binary values are base64 both ways.

Responses are `<XResponse><XResult>...</XResult><ResponseMetadata><RequestId>` with flattened lists and
maps: what botocore's query parser reads with the query-compatibility names.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from scte.queue.errors import invalid_parameter
from scte.queue.server.actions import Field
from scte.queue.server.errors import XML_CONTENT_TYPE, Headers, Response, malformed_query
from scte.queue.server.xml import XML_NAMESPACE, escape

Tree = dict[str, Any]


def parse_form(*parts: bytes) -> dict[str, str]:
    """The form's fields (URL query string and body together; the body wins). Invalid UTF-8 is a 400."""
    out: dict[str, str] = {}
    try:
        for part in parts:
            if part:
                out.update(parse_qsl(part.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise malformed_query("The request is not valid UTF-8.") from None
    return out


def tree(form: Mapping[str, str]) -> Tree:
    """`a.1.b=x` -> {"a": {"1": {"b": "x"}}}; keys never hold user text (names travel as values)."""
    root: Tree = {}
    for key, value in form.items():
        node = root
        *path, last = key.split(".")
        for segment in path:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        if not isinstance(node.get(last), dict):
            node[last] = value
    return root


def _numbered(node: object) -> list[Any]:
    """The members of a flattened list, in index order (`1`, `2`, ...); a lone value is a list of one."""
    if isinstance(node, dict):
        items = [(int(k), v) for k, v in node.items() if k.isdigit()]
        return [v for _i, v in sorted(items, key=lambda kv: kv[0])]
    if node is None:
        return []
    return [node]


def params_from_form(schema: Mapping[str, Field], form: Mapping[str, str]) -> dict[str, Any]:
    return _struct(schema, tree(form))


def _struct(schema: Mapping[str, Field], tree: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        node = tree.get(spec.query_name) if spec.query_name else None
        if node is None:
            node = tree.get(name)
        if node is None:
            continue
        value = _member(spec, node)
        if value is not None:
            out[name] = value
    return out


def text(node: object) -> str | None:
    return node if isinstance(node, str) else None


def _member(spec: Field, node: Any) -> Any:
    kind = spec.kind
    if kind in ("str", "int"):
        return text(node)  # integers stay text: the engine validates "12" and "abc" alike
    if kind == "strlist":
        if node == "":  # `AttributeName=`: how botocore's query serializer writes an empty list
            return []
        return [v for v in _numbered(node) if isinstance(v, str)]
    if kind == "strmap":
        out: dict[str, str] = {}
        for pair in _numbered(node):
            if isinstance(pair, dict) and isinstance(pair.get(spec.key_name), str):
                out[pair[spec.key_name]] = text(pair.get(spec.value_name)) or ""
        return out
    if kind == "attrmap":
        attrs: dict[str, Any] = {}
        for pair in _numbered(node):
            if isinstance(pair, dict) and isinstance(pair.get("Name"), str):
                value = pair.get("Value")
                attrs[pair["Name"]] = _attribute_value(value if isinstance(value, dict) else {})
        return attrs
    if kind == "entries":
        return [_struct(spec.entry, e) for e in _numbered(node) if isinstance(e, dict)]
    raise AssertionError(f"unknown field kind {kind}")  # pragma: no cover


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameter("A BinaryValue is not valid base64.") from None


def _attribute_value(node: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("DataType", "StringValue"):
        if isinstance(node.get(key), str):
            out[key] = node[key]
    if isinstance(node.get("BinaryValue"), str):
        out["BinaryValue"] = _b64(node["BinaryValue"])
    strings = node.get("StringListValue") or node.get("StringListValues")
    if strings is not None:
        out["StringListValues"] = [s for s in _numbered(strings) if isinstance(s, str)]
    binaries = node.get("BinaryListValue") or node.get("BinaryListValues")
    if binaries is not None:
        out["BinaryListValues"] = [_b64(b) for b in _numbered(binaries) if isinstance(b, str)]
    return out


# -- responses ---------------------------------------------------------------------------------------------

# Flattened lists: result member -> element name of each item.
_LIST_ITEMS = {
    "QueueUrls": "QueueUrl",
    "queueUrls": "QueueUrl",
    "Messages": "Message",
    "Failed": "BatchResultErrorEntry",
    "Results": "Results",
    "StringListValues": "StringListValue",
    "BinaryListValues": "BinaryListValue",
}
# Flattened maps: result member -> (element of each pair, key element, value element).
_MAP_ITEMS = {
    "Attributes": ("Attribute", "Name", "Value"),
    "Tags": ("Tag", "Key", "Value"),
    "MessageAttributes": ("MessageAttribute", "Name", "Value"),
}
# Actions whose output has members; the others answer with ResponseMetadata only.
_WITH_RESULT = frozenset(
    {
        "CreateQueue",
        "GetQueueUrl",
        "ListQueues",
        "GetQueueAttributes",
        "SendMessage",
        "SendMessageBatch",
        "ReceiveMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibilityBatch",
        "ListDeadLetterSourceQueues",
        "ListQueueTags",
        "StartMessageMoveTask",
        "ListMessageMoveTasks",
        "CancelMessageMoveTask",
    }
)


def xml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return escape(str(value))


def _members(data: Mapping[str, Any], out: list[str], action: str) -> None:
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, list):
            item = _LIST_ITEMS.get(key) or (f"{action}ResultEntry" if key == "Successful" else key)
            _items(item, value, out, action)
        elif isinstance(value, dict):
            if key in _MAP_ITEMS:
                pair, key_name, value_name = _MAP_ITEMS[key]
                for k, v in value.items():
                    out.append(f"<{pair}><{key_name}>{escape(str(k))}</{key_name}><{value_name}>")
                    if isinstance(v, dict):
                        _members(v, out, action)
                    else:
                        out.append(xml_scalar(v))
                    out.append(f"</{value_name}></{pair}>")
            else:
                out.append(f"<{key}>")
                _members(value, out, action)
                out.append(f"</{key}>")
        else:
            out.append(f"<{key}>{xml_scalar(value)}</{key}>")


def _items(element: str, values: Iterable[Any], out: list[str], action: str) -> None:
    for value in values:
        out.append(f"<{element}>")
        if isinstance(value, dict):
            _members(value, out, action)
        else:
            out.append(xml_scalar(value))
        out.append(f"</{element}>")


def render(action: str, result: Mapping[str, Any], request_id: str) -> Response:
    parts = [f'<?xml version="1.0"?><{action}Response xmlns="{XML_NAMESPACE}">']
    if action in _WITH_RESULT:
        parts.append(f"<{action}Result>")
        _members(result, parts, action)
        if len(parts) == 2:  # nothing in it: AWS writes the empty element (`<ReceiveMessageResult/>`)
            parts[1] = f"<{action}Result/>"
        else:
            parts.append(f"</{action}Result>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
    headers: Headers = [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return 200, headers, "".join(parts).encode("utf-8")
