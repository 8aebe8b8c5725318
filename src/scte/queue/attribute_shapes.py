"""Message attributes of a known shape, prepared without a Python step per attribute.

A service sends the same attribute names, in the same order, with the same data types, with every message
(the bus's CloudEvents envelope: nine `String` attributes); only the values change. For such a message the
checks of names and data types, the stored JSON, `MD5OfMessageAttributes` and the size are the same work
every time but for the values, so a `Shape` (keyed by the names in their order) holds everything about them
that does not depend on the values, and the values are checked and spliced in with a few C-level calls.

Only attributes that are exactly `{"DataType": <the shape's type>, "StringValue": <non-empty str>}` take
this path, and a shape is only made from names and data types that have already passed the full checks
once; anything else returns None and the caller runs the general code, which gives every error. The results
are bit-for-bit those of the general code (the unit tests compare them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from scte.queue import validation
from scte.queue.checksums import _BUILTIN_MD5_MAX, _attribute_head, _builtin_md5

__all__ = ["StringValues", "sns_string_attributes", "sqs_string_attributes"]

_DATA_TYPE = itemgetter("DataType")
_STRING_VALUE = itemgetter("StringValue")
_SHAPES_LIMIT = 1024  # distinct shapes remembered (each a few hundred bytes)
_LEN4 = [n.to_bytes(4, "big").decode("latin-1") for n in range(4096)]  # MD5 length prefixes, as latin-1


def _len4(n: int) -> str:
    return _LEN4[n] if n < 4096 else n.to_bytes(4, "big").decode("latin-1")


class Shape:
    """What a message's attributes share with every message of the same names and data types."""

    __slots__ = ("count", "fixed_size", "json_pieces", "json_plain_pieces", "md5_order", "md5_pieces", "names", "types")

    def __init__(self, names: tuple[str, ...], types: list[str]) -> None:
        self.names = names
        self.types = types
        self.count = len(names)
        # UTF-8 bytes of the names and data types (counted against MaximumMessageSize with the values)
        self.fixed_size = sum(
            len(n.encode("utf-8")) + len(t.encode("utf-8")) for n, t in zip(names, types, strict=True)
        )
        # the stored JSON (encode_message_attributes) as pieces, the values' places empty: for values with nothing
        # to escape (printable ASCII without `"` and `\\`) the quotes are in the pieces, else in the values
        heads = [f'{encode_basestring(n)}:[{encode_basestring(t)},"S",' for n, t in zip(names, types, strict=True)]
        self.json_pieces: list[str] = [""] * (2 * self.count + 1)
        self.json_pieces[0::2] = ["{" + heads[0], *(f"],{h}" for h in heads[1:]), "]}"]
        self.json_plain_pieces: list[str] = [""] * (2 * self.count + 1)
        self.json_plain_pieces[0::2] = ["{" + heads[0] + '"', *(f'"],{h}"' for h in heads[1:]), '"]}']
        # md5_of_message_attributes' input, as latin-1 text: per attribute in name order, its encoded name and
        # data type (`heads`), the value's length and the value; `pieces` is that list with the heads filled in
        order = sorted(range(self.count), key=names.__getitem__)
        self.md5_order = itemgetter(*order) if self.count > 1 else (lambda values: (values[0],))
        self.md5_pieces: list[str] = [""] * (3 * self.count)
        self.md5_pieces[0::3] = [_attribute_head(names[i], types[i]).decode("latin-1") for i in order]

    def values(self, attrs: Mapping[str, Any]) -> tuple[list[Any], list[str], str] | None:
        """(the attribute structures, their StringValues, those joined) if every attribute is exactly
        {"DataType": the shape's, "StringValue": non-empty str}; None otherwise."""
        try:
            parts = list(attrs.values())
            if list(map(_DATA_TYPE, parts)) != self.types or sum(map(len, parts)) != 2 * self.count:
                return None
            values = list(map(_STRING_VALUE, parts))
            joined = "".join(values)  # TypeError unless all are text
        except (KeyError, TypeError):
            return None
        if not all(values):
            return None
        return parts, values, joined

    def json(self, values: list[str], joined: str) -> str:
        """The stored JSON; `joined`: the values joined."""
        if '"' in joined or "\\" in joined:
            pieces = self.json_pieces.copy()
            pieces[1::2] = map(encode_basestring, values)
        else:
            pieces = self.json_plain_pieces.copy()
            pieces[1::2] = values
        return "".join(pieces)

    def md5(self, values: list[str]) -> str:
        """MD5OfMessageAttributes of the values; they must be ASCII (UTF-8 and latin-1 agree on them)."""
        ordered = self.md5_order(values)
        pieces = self.md5_pieces.copy()
        try:
            pieces[1::3] = map(_LEN4.__getitem__, map(len, ordered))
        except IndexError:
            pieces[1::3] = [_len4(len(v)) for v in ordered]
        pieces[2::3] = ordered
        data = "".join(pieces).encode("latin-1")
        if len(data) <= _BUILTIN_MD5_MAX:
            digest: str = _builtin_md5(data).hexdigest()
            return digest
        return hashlib.md5(data, usedforsecurity=False).hexdigest()


_SQS_SHAPES: dict[tuple[str, ...], Shape] = {}


def _sqs_shape(names: tuple[str, ...], attrs: Mapping[str, Any]) -> Shape | None:
    """A shape for these names if they and the attributes' data types passed SQS's checks and are String ones."""
    if len(names) > validation.MAX_MESSAGE_ATTRIBUTES or len(_SQS_SHAPES) >= _SHAPES_LIMIT:
        return None
    good_types = validation._GOOD_TYPES
    types = _string_types(names, attrs, validation._GOOD_NAMES, lambda data_type: good_types.get(data_type) == "String")
    if types is None:
        return None
    shape = _SQS_SHAPES[names] = Shape(names, types)
    return shape


def _string_types(
    names: tuple[str, ...], attrs: Mapping[str, Any], good_names: set[str], is_string: Callable[[str], bool]
) -> list[str] | None:
    """The attributes' data types, if every name is among `good_names` and every type `is_string`."""
    types: list[str] = []
    for name in names:
        attr = attrs[name]
        data_type = attr.get("DataType") if isinstance(attr, Mapping) else None
        if type(name) is not str or name not in good_names or type(data_type) is not str:
            return None
        if not is_string(data_type):
            return None
        types.append(data_type)
    return types


class StringValues:
    """What the shaped path learnt of message attributes it made: exactly {"DataType": types[i],
    "StringValue": values[i]} under names[i], the values non-empty text; `joined`: the values joined."""

    __slots__ = ("joined", "names", "types", "values")

    def __init__(self, names: tuple[str, ...], types: list[str], values: list[str], joined: str) -> None:
        self.names = names
        self.types = types
        self.values = values
        self.joined = joined


def sqs_string_attributes(attrs: Mapping[str, Any], known: StringValues | None = None) -> tuple[str, str, int] | None:
    """SendMessage's message attributes of a known shape, all Strings of printable ASCII: (the stored JSON,
    MD5OfMessageAttributes, their bytes counted against MaximumMessageSize), exactly what
    `encode_message_attributes`, `md5_of_message_attributes` and `message_size` give for attributes that
    pass `validation.validate_message_attributes`, which these do. None for any other attributes.

    `known`: what `sns_string_attributes` learnt of `attrs` (it made them), so they need not be read again."""
    if known is not None:
        names = known.names
    elif type(attrs) is not dict or not attrs:
        return None
    else:
        names = tuple(attrs)
    shape = _SQS_SHAPES.get(names)
    if shape is None:
        shape = _sqs_shape(names, attrs)
        if shape is None:
            return None
    if known is not None:
        if known.types != shape.types:
            return None
        values = known.values
        joined = known.joined
    else:
        found = shape.values(attrs)
        if found is None:
            return None
        _parts, values, joined = found
    if not (joined.isascii() and joined.isprintable()):  # the character rule of the values, at once
        return None
    return shape.json(values, joined), shape.md5(values), shape.fixed_size + len(joined)


_SNS_SHAPES: dict[tuple[str, ...], Shape] = {}


def sns_string_attributes(
    attrs: Mapping[str, Any], good_names: set[str]
) -> tuple[dict[str, dict[str, Any]], int, StringValues] | None:
    """Publish's message attributes of a known shape, all with a `String` data type (SNS checks no more of a
    String value than that it is non-empty text): (the validated copy, their UTF-8 bytes, what is known of
    the copy), the first two as `topics.messages.message_attributes` and `payload_size` give them.
    `good_names`: the names SNS's checks passed. None for any other attributes."""
    if type(attrs) is not dict or not attrs:
        return None
    names = tuple(attrs)
    shape = _SNS_SHAPES.get(names)
    if shape is None:
        if len(_SNS_SHAPES) >= _SHAPES_LIMIT:
            return None
        types = _string_types(names, attrs, good_names, lambda data_type: data_type.partition(".")[0] == "String")
        if types is None:
            return None
        shape = _SNS_SHAPES[names] = Shape(names, types)
    found = shape.values(attrs)
    if found is None:
        return None
    parts, values, joined = found
    size = shape.fixed_size + validation.utf8_len(joined)
    copy = dict(zip(names, map(dict, parts), strict=True))  # each exactly DataType and StringValue
    return copy, size, StringValues(names, shape.types, values, joined)
