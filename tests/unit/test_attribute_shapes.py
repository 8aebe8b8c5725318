"""The shaped fast paths give exactly what the general code gives, or step aside (None)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scte.queue import validation
from scte.queue.attribute_shapes import sns_string_attributes, sqs_string_attributes
from scte.queue.checksums import md5_of_message_attributes
from scte.queue.operations import decode_message_attributes, encode_message_attributes
from scte.queue.topics import messages

ENVELOPE = ("ce-id", "ce-type", "ce-source", "ce-specversion", "ce-time", "correlation-id", "ce-subject", "traceparent")


def strings(**values: str) -> dict[str, dict[str, Any]]:
    return {name.replace("_", "-"): {"DataType": "String", "StringValue": v} for name, v in values.items()}


def general_sqs(attrs: dict[str, Any]) -> tuple[str, str, int]:
    validation.validate_message_attributes(attrs)
    return encode_message_attributes(attrs), md5_of_message_attributes(attrs), validation.message_size("", attrs)


def general_sns(attrs: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    copy = messages.message_attributes(attrs)
    return copy, messages.payload_size("", copy)


def sqs_twice(attrs: dict[str, Any]) -> tuple[str, str, int] | None:
    """The fast path once the general one has seen the names and types (as the engine runs them)."""
    general_sqs(attrs)
    sqs_string_attributes(attrs)
    return sqs_string_attributes(attrs)


VALUES = [
    "a",
    "1.0",
    'with "quotes" and \\ backslash',
    "100% %s %% %(x)s",
    "x" * 5000,
    "x" * 4095,
    "y" * 4096,
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "2026-12-04T17:53:19.123456Z",
    "{}[],:",
]


@pytest.mark.parametrize("seed", range(20))
def test_sqs_shaped_matches_the_general_code(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"sqs{seed}-{n}" for n in rng.sample(ENVELOPE, rng.randint(1, len(ENVELOPE)))]  # a shape per seed
    types = ["String", "String.json", "String.%s%%", 'String."q"\\']
    attrs = {n: {"DataType": rng.choice(types), "StringValue": rng.choice(VALUES)} for n in names}
    shaped = sqs_twice(attrs)
    assert shaped == general_sqs(attrs)
    assert shaped is not None
    assert decode_message_attributes(shaped[0]) == attrs
    # a second message of the same shape, other values
    other = {n: {"DataType": a["DataType"], "StringValue": rng.choice(VALUES)} for n, a in attrs.items()}
    assert sqs_string_attributes(other) == general_sqs(other)
    # the same names with other data types: not this shape
    retyped = {n: {"DataType": "String.other", "StringValue": "v"} for n in names}
    assert sqs_twice(retyped) is None


def test_sqs_shaped_md5_is_the_one_aws_returned() -> None:
    # digests AWS returned (tests/unit/test_checksums.py KNOWN)
    attrs = {"somevalue": {"StringValue": "somevalue", "DataType": "String.custom"}}
    assert sqs_twice(attrs) == (
        '{"somevalue":["String.custom","S","somevalue"]}',
        "9e05cca738e70ff6c6041e82d5e77ef1",
        len("somevalue") + len("String.custom") + len("somevalue"),
    )
    attrs = {
        "id": {"StringValue": "2018fc74-4f77-1a5a-1be0-c2d037d5052b", "DataType": "String"},
        "contentType": {"StringValue": "application/json", "DataType": "String"},
    }
    shaped = sqs_twice(attrs)
    assert shaped is not None and shaped[1] == md5_of_message_attributes(attrs)


@pytest.mark.parametrize(
    "attrs",
    [
        {"n1": {"DataType": "Number", "StringValue": "1"}},
        {"n1": {"DataType": "Binary", "BinaryValue": b"x"}},
        {"n1": {"DataType": "String", "StringValue": "tab\there"}},
        {"n1": {"DataType": "String", "StringValue": "caf\u00e9"}},
        {"n1": {"DataType": "String", "StringValue": "x", "StringListValues": []}},
    ],
)
def test_sqs_shaped_steps_aside(attrs: dict[str, Any]) -> None:
    general_sqs(attrs)
    assert sqs_string_attributes(attrs) is None


def test_sqs_shaped_steps_aside_for_what_the_general_code_refuses() -> None:
    good = strings(k1="v", k2="w")
    assert sqs_twice(good) is not None
    for bad in (
        {"k1": {"DataType": "String", "StringValue": ""}, "k2": good["k2"]},
        {"k1": {"DataType": "String", "StringValue": None}, "k2": good["k2"]},
        {"k1": {"DataType": "String", "StringValue": 5}, "k2": good["k2"]},
        {"k1": {"DataType": "Number", "StringValue": "x"}, "k2": good["k2"]},
        {"k1": {"DataType": "String"}, "k2": good["k2"]},
        {"k1": "not a structure", "k2": good["k2"]},
        {"k1": {"DataType": "String", "StringValue": "\x00"}, "k2": good["k2"]},
    ):
        assert sqs_string_attributes(bad) is None
    # names never admitted by the full checks take no shape
    assert sqs_string_attributes(strings(**{"never.seen": "v"})) is None
    assert sqs_string_attributes({"AWS.x": {"DataType": "String", "StringValue": "v"}}) is None
    assert sqs_string_attributes({}) is None


@pytest.mark.parametrize("seed", range(10))
def test_sns_shaped_matches_the_general_code(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"sns{seed}-{n}" for n in rng.sample(ENVELOPE, rng.randint(1, len(ENVELOPE)))]
    values = [*VALUES, "caf\u00e9 \u2603", "tab\there"]
    attrs = {n: {"DataType": rng.choice(["String", "String.x"]), "StringValue": rng.choice(values)} for n in names}
    expected = general_sns(attrs)
    sns_string_attributes(attrs, messages._GOOD_NAMES)
    shaped = sns_string_attributes(attrs, messages._GOOD_NAMES)
    assert shaped is not None and shaped[0] is not None
    assert shaped[:2] == expected
    copy, _size, known = shaped
    assert all(copy[n] is not attrs[n] for n in attrs)  # a copy
    assert (known.names, known.types, known.values) == (
        tuple(attrs),
        [a["DataType"] for a in attrs.values()],
        [a["StringValue"] for a in attrs.values()],
    )
    # SQS's shaped path given what SNS knows of the copy: what the general code gives, or None for values
    # it leaves to the general code (non-ASCII, control characters)
    general = general_sqs(copy)
    with_known = sqs_string_attributes(copy, known)
    assert with_known == sqs_string_attributes(copy)
    assert with_known == (general if known.joined.isascii() and known.joined.isprintable() else None)


def test_sns_shaped_steps_aside() -> None:
    good = strings(s1="v", s2="w")
    general_sns(good)
    assert sns_string_attributes(good, messages._GOOD_NAMES) is not None
    for bad in (
        {"s1": {"DataType": "String", "StringValue": ""}, "s2": good["s2"]},
        {"s1": {"DataType": "Number", "StringValue": "1"}, "s2": good["s2"]},
        {"s1": {"DataType": "String", "StringValue": "v", "BinaryValue": b"x"}, "s2": good["s2"]},
    ):
        assert sns_string_attributes(bad, messages._GOOD_NAMES) is None
    assert sns_string_attributes(strings(unseen_name="v"), messages._GOOD_NAMES) is None


def reference_decode(text: str) -> dict[str, dict[str, Any]]:
    """decode_message_attributes as first written: json.loads and a loop."""
    import base64
    import json

    out: dict[str, dict[str, Any]] = {}
    for name, (data_type, kind, value) in json.loads(text).items():
        if kind == "B":
            out[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(value)}
        else:
            out[name] = {"DataType": data_type, "StringValue": value}
    return out


@pytest.mark.parametrize("seed", range(40))
def test_decode_matches_json(seed: int) -> None:
    rng = random.Random(seed)
    names = rng.sample(ENVELOPE, rng.randint(1, len(ENVELOPE)))
    values = [*VALUES, "caf\u00e9 \u2603", "tab\there", "line\nbreak", "\u2028", "]},{", '":["', "S"]
    attrs: dict[str, dict[str, Any]] = {}
    for n in names:
        if rng.random() < 0.1:
            attrs[n] = {"DataType": "Binary", "BinaryValue": bytes(rng.randrange(256) for _ in range(5))}
        else:
            attrs[n] = {"DataType": rng.choice(["String", "Number", "String.x"]), "StringValue": rng.choice(values)}
    text = encode_message_attributes(attrs)
    assert decode_message_attributes(text) == reference_decode(text) == attrs


def test_decode_of_other_json_texts() -> None:
    for text in ("{}", '{"a": ["String", "S", "v"]}', '{"a":["String","S","v"]} ', '{"a":["String","B","dg=="]}'):
        assert decode_message_attributes(text) == reference_decode(text)
