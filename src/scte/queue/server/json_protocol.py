"""The SQS JSON protocol (awsJson1_0): `POST /`, `X-Amz-Target: AmazonSQS.<Action>`, JSON in and out.

Requests are type-checked against the action's schema: a member of the wrong type is a 400
`SerializationException`, as AWS's deserializer answers, never a 500. Binary attribute values travel as
base64 text and are `bytes` inside.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from scte.queue.server.actions import Field
from scte.queue.server.errors import JSON_CONTENT_TYPE, Headers, Response, serialization_error

TARGET_PREFIX = "AmazonSQS."


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)  # also refuses invalid UTF-8, NaN, integers past 64 bits, 1,024+ levels of nesting
    except orjson.JSONDecodeError:
        raise serialization_error("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise serialization_error("The request body must be a JSON object.")
    return data


def check_params(schema: Mapping[str, Field], data: Mapping[str, Any]) -> dict[str, Any]:
    """The members the schema knows, type-checked and with binary values decoded; nulls count as absent."""
    # Over the request's members rather than the schema's: a batch entry names 2 of its 7 possible members.
    out: dict[str, Any] = {}
    for name, value in data.items():
        spec = schema.get(name)
        if spec is None or value is None:
            continue
        if spec.kind == "str" and type(value) is str:  # the common case, without a call
            out[name] = value
        else:
            out[name] = _check(spec, value, name)
    return out


_TEXT_MEMBERS: dict[int, tuple[Mapping[str, Field], frozenset[str]]] = {}


def _text_members(schema: Mapping[str, Field]) -> frozenset[str]:
    """The members of an entry schema whose values are plain strings (cached per schema)."""
    known = _TEXT_MEMBERS.get(id(schema))
    if known is None or known[0] is not schema:
        known = _TEXT_MEMBERS[id(schema)] = (schema, frozenset(n for n, f in schema.items() if f.kind == "str"))
    return known[1]


def _wrong(path: str, expected: str, value: object) -> Exception:
    return serialization_error(f"{path} must be {expected}, not {type(value).__name__}.")


def _check(spec: Field, value: Any, path: str) -> Any:
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            raise _wrong(path, "a string", value)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, "an integer", value)
        return value
    if kind == "strlist":
        if not isinstance(value, list):
            raise _wrong(path, "a list of strings", value)
        for item in value:
            if not isinstance(item, str):
                raise _wrong(f"{path}[]", "a string", item)
        return value
    if kind == "strmap":
        if not isinstance(value, dict):
            raise _wrong(path, "an object of strings", value)
        for key, item in value.items():
            if not isinstance(item, str):
                raise _wrong(f"{path}.{key}", "a string", item)
        return value
    if kind == "attrmap":
        if not isinstance(value, dict):
            raise _wrong(path, "an object of attribute values", value)
        return {key: _attribute_value(item, f"{path}.{key}") for key, item in value.items()}
    if kind == "entries":
        if not isinstance(value, list):
            raise _wrong(path, "a list of entries", value)
        entries = []
        schema = spec.entry
        text_members = _text_members(schema)
        for index, item in enumerate(value):
            if type(item) is dict and item.keys() <= text_members:
                # The usual entry (SendMessageBatch: Id and MessageBody): known text members only, taken as
                # it is when every value is a string (a null or another type goes the long way).
                for member in item.values():
                    if type(member) is not str:
                        break
                else:
                    entries.append(item)
                    continue
            elif not isinstance(item, dict):
                raise _wrong(f"{path}[{index}]", "an object", item)
            entries.append(check_params(schema, item))
        return entries
    raise AssertionError(f"unknown field kind {kind}")  # pragma: no cover


def _b64(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise _wrong(path, "base64 text", value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise serialization_error(f"{path} is not valid base64.") from None


def _attribute_value(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(path, "an object", value)
    out: dict[str, Any] = {}
    for key in ("DataType", "StringValue"):
        item = value.get(key)
        if item is not None:
            if not isinstance(item, str):
                raise _wrong(f"{path}.{key}", "a string", item)
            out[key] = item
    if value.get("BinaryValue") is not None:
        out["BinaryValue"] = _b64(value["BinaryValue"], f"{path}.BinaryValue")
    strings = value.get("StringListValues")
    if strings is not None:
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise _wrong(f"{path}.StringListValues", "a list of strings", strings)
        out["StringListValues"] = strings
    binaries = value.get("BinaryListValues")
    if binaries is not None:
        if not isinstance(binaries, list):
            raise _wrong(f"{path}.BinaryListValues", "a list of base64 text", binaries)
        out["BinaryListValues"] = [_b64(b, f"{path}.BinaryListValues[]") for b in binaries]
    return out


def _default(value: object) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def render(result: Mapping[str, Any], request_id: str) -> Response:
    body = orjson.dumps(result, default=_default)
    headers: Headers = [(b"content-type", JSON_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return 200, headers, body
