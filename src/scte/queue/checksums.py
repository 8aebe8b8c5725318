"""The digests SQS puts in its responses: MD5 of the body and of the message attributes.

SDKs that check integrity (the AWS SDKs for Java, Go, .NET, Ruby, ...) recompute `MD5OfMessageBody` and
`MD5OfMessageAttributes` from what they sent or received and fail the call when ours differ, so these have to
be bit-for-bit what AWS computes. botocore does not check them, which is why a wrong digest can go unnoticed
in Python tests: the unit tests pin the values AWS returns for known inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["md5_of_body", "md5_of_message_attributes", "transport_type"]

# The byte AWS writes between an attribute's data type and its value: 1 for values carried in StringValue
# (String and Number, with or without a custom label), 2 for values carried in BinaryValue.
_STRING_TRANSPORT = b"\x01"
_BINARY_TRANSPORT = b"\x02"


_builtin_md5: Callable[[bytes], Any]
try:  # CPython's own MD5: no OpenSSL EVP lookup per hash object, a third cheaper for a message-sized body
    from _md5 import md5 as _builtin_md5  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover - a Python built without it
    _builtin_md5 = hashlib.md5

# Up to this size the builtin MD5 is faster; beyond it OpenSSL's (which also releases the GIL).
_BUILTIN_MD5_MAX = 2048


def md5_of_body(body: str) -> str:
    """Hex MD5 of the UTF-8 encoded body, as `MD5OfMessageBody` / `MD5OfBody`."""
    data = body.encode("utf-8")
    if len(data) <= _BUILTIN_MD5_MAX:
        digest: str = _builtin_md5(data).hexdigest()
        return digest
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def transport_type(data_type: str) -> str:
    """`Binary` or `String`: which value field carries an attribute of this DataType.

    The logical type is the part before the first dot: `Binary.gif` travels as binary, `Number.int` and
    `String.json` travel as strings.
    """
    return "Binary" if data_type.partition(".")[0] == "Binary" else "String"


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def md5_of_message_attributes(attrs: Mapping[str, Mapping[str, object]]) -> str:
    """Hex MD5 of message attributes with AWS's encoding, as `MD5OfMessageAttributes`.

    For each attribute in name order: 4-byte big-endian length + UTF-8 name, 4-byte length + UTF-8 data
    type, one transport byte (1 string/number, 2 binary), 4-byte length + value (the UTF-8 StringValue, or
    the raw bytes of BinaryValue). Names are sorted by code point, which equals the byte order AWS uses for
    the ASCII names that `validation.validate_message_attributes` admits. The same encoding gives
    `MD5OfMessageSystemAttributes` when called with the system attributes (e.g. AWSTraceHeader).

    Callers pass attributes that already passed validation; a value of the wrong kind is a programming
    error and raises TypeError rather than producing a digest no SDK would accept.
    """
    parts: list[bytes] = []
    for name in sorted(attrs):
        attr = attrs[name]
        data_type = attr.get("DataType")
        if not isinstance(data_type, str):
            raise TypeError(f"message attribute {name!r} has no string DataType")
        head = _HEADS.get((name, data_type))
        if head is None:
            head = _attribute_head(name, data_type)
        if head[-1] == 2:  # binary transport
            value = attr.get("BinaryValue")
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"message attribute {name!r} of type {data_type} needs bytes in BinaryValue")
            raw = bytes(value)
        else:
            text = attr.get("StringValue")
            if not isinstance(text, str):
                raise TypeError(f"message attribute {name!r} of type {data_type} needs a str StringValue")
            raw = text.encode("utf-8")
        parts.append(head)
        parts.append(len(raw).to_bytes(4, "big"))
        parts.append(raw)
    return hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()


# The encoded name, data type and transport byte of the attributes seen so far: the same few names and
# types come with every message of a service (the bus's envelope), so this part is encoded once.
_HEADS: dict[tuple[str, str], bytes] = {}
_HEADS_LIMIT = 4096


def _attribute_head(name: str, data_type: str) -> bytes:
    transport = _BINARY_TRANSPORT if transport_type(data_type) == "Binary" else _STRING_TRANSPORT
    head = _length_prefixed(name.encode("utf-8")) + _length_prefixed(data_type.encode("utf-8")) + transport
    if len(_HEADS) < _HEADS_LIMIT:
        _HEADS[(name, data_type)] = head
    return head
