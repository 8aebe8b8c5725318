"""SNS filter policies: every operator matching and not, both scopes, and the policies SNS refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scte.queue.filter_policy import SnsError, parse_policy

ATTRS = "MessageAttributes"
BODY = "MessageBody"


def s(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def n(value: str) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": value}


def arr(values: Any) -> dict[str, str]:
    return {"DataType": "String.Array", "StringValue": json.dumps(values)}


def b(value: bytes) -> dict[str, Any]:
    return {"DataType": "Binary", "BinaryValue": value}


# (id, policy, scope, message attributes or body, expected)
CASES: list[tuple[str, dict[str, Any], str, Any, bool]] = [
    # exact strings
    ("string-exact", {"store": ["example_corp"]}, ATTRS, {"store": s("example_corp")}, True),
    ("string-exact-other", {"store": ["example_corp"]}, ATTRS, {"store": s("different_corp")}, False),
    ("string-exact-missing", {"store": ["example_corp"]}, ATTRS, {}, False),
    ("string-or-values", {"store": ["a", "b"]}, ATTRS, {"store": s("b")}, True),
    ("string-case-sensitive", {"store": ["abc"]}, ATTRS, {"store": s("ABC")}, False),
    ("string-not-number", {"price": ["100"]}, ATTRS, {"price": n("100")}, False),
    ("string-array-element", {"sport": ["rugby"]}, ATTRS, {"sport": arr(["tennis", "rugby"])}, True),
    ("string-array-no-element", {"sport": ["baseball"]}, ATTRS, {"sport": arr(["tennis", "rugby"])}, False),
    ("binary-never-compared", {"blob": ["AQID"]}, ATTRS, {"blob": b(b"\x01\x02\x03")}, False),
    ("body-string", {"store": ["example_corp"]}, BODY, {"store": "example_corp"}, True),
    ("body-string-other", {"store": ["example_corp"]}, BODY, {"store": "other"}, False),
    ("body-array", {"sport": ["rugby"]}, BODY, {"sport": ["tennis", "rugby"]}, True),
    # exact numbers
    ("number-exact", {"price": [100]}, ATTRS, {"price": n("100")}, True),
    ("number-exact-float-form", {"price": [100]}, ATTRS, {"price": n("100.0")}, True),
    ("number-other", {"price": [100]}, ATTRS, {"price": n("101")}, False),
    ("number-not-string", {"price": [100]}, ATTRS, {"price": s("100")}, False),
    ("number-accuracy", {"price": [100.123456789]}, ATTRS, {"price": n("100.1234567")}, True),
    ("number-in-string-array", {"price": [100, 500]}, ATTRS, {"price": arr([100, 50])}, True),
    ("number-string-array-scalar", {"price": [100, 500]}, ATTRS, {"price": arr(100)}, True),
    (
        "number-string-array-not-json",
        {"price": [100]},
        ATTRS,
        {"price": {"DataType": "String.Array", "StringValue": "x y"}},
        False,
    ),
    ("body-number", {"price": [100]}, BODY, {"price": 100}, True),
    ("body-number-string", {"price": [100]}, BODY, {"price": "100"}, False),
    # null and booleans (body)
    ("body-null", {"error": [None]}, BODY, {"error": None}, True),
    ("body-null-other", {"error": [None]}, BODY, {"error": "x"}, False),
    ("body-bool", {"encrypted": [False]}, BODY, {"encrypted": False}, True),
    ("body-bool-other", {"encrypted": [False]}, BODY, {"encrypted": True}, False),
    # prefix / suffix / equals-ignore-case
    ("prefix", {"sport": [{"prefix": "bas"}]}, ATTRS, {"sport": s("basketball")}, True),
    ("prefix-no", {"sport": [{"prefix": "bas"}]}, ATTRS, {"sport": s("rugby")}, False),
    ("prefix-body", {"sport": [{"prefix": "bas"}]}, BODY, {"sport": "baseball"}, True),
    ("prefix-not-number", {"code": [{"prefix": "1"}]}, BODY, {"code": 123}, False),
    ("suffix", {"sport": [{"suffix": "ball"}]}, ATTRS, {"sport": s("baseball")}, True),
    ("suffix-no", {"sport": [{"suffix": "ball"}]}, BODY, {"sport": "rugby"}, False),
    ("ignore-case", {"sport": [{"equals-ignore-case": "tennis"}]}, ATTRS, {"sport": s("TeNnis")}, True),
    ("ignore-case-no", {"sport": [{"equals-ignore-case": "tennis"}]}, BODY, {"sport": "tenis"}, False),
    # anything-but
    ("anything-but", {"sport": [{"anything-but": "rugby"}]}, ATTRS, {"sport": s("tennis")}, True),
    ("anything-but-hit", {"sport": [{"anything-but": ["rugby", "tennis"]}]}, ATTRS, {"sport": s("tennis")}, False),
    ("anything-but-missing", {"sport": [{"anything-but": "rugby"}]}, ATTRS, {}, False),
    ("anything-but-array-none", {"sport": [{"anything-but": ["rugby"]}]}, ATTRS, {"sport": arr(["a", "b"])}, True),
    ("anything-but-array-one", {"sport": [{"anything-but": ["rugby"]}]}, ATTRS, {"sport": arr(["a", "rugby"])}, False),
    ("anything-but-number", {"n": [{"anything-but": [100]}]}, ATTRS, {"n": n("150")}, True),
    ("anything-but-number-hit", {"n": [{"anything-but": [100]}]}, BODY, {"n": 100}, False),
    ("anything-but-number-vs-string", {"n": [{"anything-but": ["100"]}]}, ATTRS, {"n": n("100")}, True),
    ("anything-but-prefix", {"sport": [{"anything-but": {"prefix": "bas"}}]}, ATTRS, {"sport": s("rugby")}, True),
    ("anything-but-prefix-hit", {"sport": [{"anything-but": {"prefix": "bas"}}]}, BODY, {"sport": "baseball"}, False),
    ("anything-but-suffix", {"f": [{"anything-but": {"suffix": ".png"}}]}, BODY, {"f": "a.jpg"}, True),
    ("anything-but-suffix-hit", {"f": [{"anything-but": {"suffix": ".png"}}]}, BODY, {"f": "a.png"}, False),
    # numeric
    ("numeric-eq", {"p": [{"numeric": ["=", 100]}]}, ATTRS, {"p": n("100")}, True),
    ("numeric-eq-no", {"p": [{"numeric": ["=", 100]}]}, ATTRS, {"p": n("50")}, False),
    ("numeric-range", {"p": [{"numeric": [">", 49, "<=", 100]}]}, ATTRS, {"p": n("100")}, True),
    ("numeric-range-below", {"p": [{"numeric": [">", 49, "<=", 100]}]}, ATTRS, {"p": n("49")}, False),
    ("numeric-range-above", {"p": [{"numeric": [">=", 0, "<", 10]}]}, BODY, {"p": 10}, False),
    ("numeric-lt-body", {"p": [{"numeric": ["<", 0]}]}, BODY, {"p": -0.5}, True),
    ("numeric-not-string", {"p": [{"numeric": [">", 0]}]}, ATTRS, {"p": s("5")}, False),
    ("numeric-array", {"p": [{"numeric": [">", 10]}]}, ATTRS, {"p": arr([1, 20])}, True),
    # exists
    ("exists-true", {"store": [{"exists": True}]}, ATTRS, {"store": s("x")}, True),
    ("exists-true-missing", {"store": [{"exists": True}]}, ATTRS, {"other": s("x")}, False),
    ("exists-false", {"store": [{"exists": False}]}, ATTRS, {"other": s("x")}, True),
    ("exists-false-present", {"store": [{"exists": False}]}, BODY, {"store": "x"}, False),
    ("exists-body-object-not-leaf", {"store": [{"exists": True}]}, BODY, {"store": {"name": "x"}}, False),
    ("exists-binary-attribute", {"blob": [{"exists": True}]}, ATTRS, {"blob": b(b"1")}, True),
    # cidr
    ("cidr", {"ip": [{"cidr": "10.0.0.0/24"}]}, ATTRS, {"ip": s("10.0.0.7")}, True),
    ("cidr-outside", {"ip": [{"cidr": "10.0.0.0/24"}]}, BODY, {"ip": "10.0.1.7"}, False),
    # AND across keys, $or
    (
        "and-all",
        {"store": [{"exists": True}], "event": ["order_cancelled"], "price": [100]},
        ATTRS,
        {"store": s("x"), "event": s("order_cancelled"), "price": n("100")},
        True,
    ),
    ("and-one-fails", {"store": ["a"], "event": ["b"]}, ATTRS, {"store": s("a"), "event": s("c")}, False),
    (
        "or-first",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        ATTRS,
        {"source": s("aws.cloudwatch"), "metricName": s("CPU")},
        True,
    ),
    (
        "or-second-body",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        BODY,
        {"source": "aws.cloudwatch", "namespace": "AWS/EC2"},
        True,
    ),
    (
        "or-none",
        {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}]},
        ATTRS,
        {"source": s("aws.cloudwatch")},
        False,
    ),
    # nested keys (body only)
    ("nested", {"store": {"name": ["example_corp"]}}, BODY, {"store": {"name": "example_corp"}}, True),
    ("nested-no", {"store": {"name": ["example_corp"]}}, BODY, {"store": {"name": "another"}}, False),
    ("nested-missing-parent", {"store": {"name": ["x"]}}, BODY, {"name": "x"}, False),
    (
        "nested-records-any",
        {"Records": {"eventName": [{"prefix": "ObjectCreated:"}]}},
        BODY,
        {"Records": [{"eventName": "ObjectCreated:Put"}, {"eventName": "ObjectRemoved:Delete"}]},
        True,
    ),
    (
        "nested-deep-prefix-no",
        {"Records": {"s3": {"object": {"key": [{"prefix": "test-"}]}}}},
        BODY,
        {"Records": [{"s3": {"object": {"key": "prod-entry.xml"}}}]},
        False,
    ),
    ("nested-exists-false", {"a": {"b": [{"exists": False}]}}, BODY, {"a": {"c": 1}}, True),
    # empty policy, bodies that are not JSON objects
    ("empty-policy", {}, BODY, "not json at all", True),
    ("body-not-json", {"store": ["x"]}, BODY, '{"store": "x"', False),
    ("body-not-object", {"store": ["x"]}, BODY, ["x"], False),
]


@pytest.mark.parametrize(("policy", "scope", "message", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matching(policy: dict[str, Any], scope: str, message: Any, expected: bool) -> None:
    compiled = parse_policy(json.dumps(policy), scope)
    if scope == ATTRS:
        assert compiled.matches(message, "") is expected
    else:
        body = message if isinstance(message, str) else json.dumps(message)
        assert compiled.matches({}, body) is expected


def test_attribute_scope_ignores_body_and_body_scope_ignores_attributes() -> None:
    on_attrs = parse_policy('{"k": ["v"]}', ATTRS)
    on_body = parse_policy('{"k": ["v"]}', BODY)
    assert not on_attrs.matches({}, '{"k": "v"}')
    assert not on_body.matches({"k": s("v")}, "{}")


NUMERIC = "Invalid parameter: Attributes Reason: FilterPolicy: {}\n at ..."

# (id, policy text, scope, SNS error message)
INVALID: list[tuple[str, str, str, str]] = [
    ("not-json", '{"a": [', ATTRS, "Invalid parameter: FilterPolicy: failed to parse JSON."),
    ("not-object", '["a"]', ATTRS, "Invalid parameter: FilterPolicy: Filter policy must be a JSON object"),
    (
        "too-complex",
        json.dumps({"store": [str(i) for i in range(151)]}),
        ATTRS,
        "Invalid parameter: FilterPolicy: Filter policy is too complex",
    ),
    (
        "too-complex-nested",
        json.dumps(
            {
                "a": {"b": {"c": ["1", "2", "3", "4"]}},
                "d": {"e": ["1", "2", "3"]},
                "f": ["1", "2", "3"],
            }
        ),
        BODY,
        "Invalid parameter: FilterPolicy: Filter policy is too complex",
    ),
    (
        "nested-value-list",
        '{"store": [["example_corp"]]}',
        ATTRS,
        "Invalid parameter: FilterPolicy: Match value must be String, number, true, false, or null",
    ),
    (
        "exists-not-bool",
        '{"store": [{"exists": null}]}',
        ATTRS,
        "Invalid parameter: FilterPolicy: exists match pattern must be either true or false.",
    ),
    (
        "unknown-operator",
        '{"store": [{"error": true}]}',
        ATTRS,
        "Invalid parameter: FilterPolicy: Unrecognized match type error",
    ),
    ("numeric-string-value", '{"p": [{"numeric": ["<", "100"]}]}', ATTRS, NUMERIC.format("Value of < must be numeric")),
    (
        "numeric-second-string",
        '{"p": [{"numeric": [">", 50, "<=", "100"]}]}',
        ATTRS,
        NUMERIC.format("Value of <= must be numeric"),
    ),
    ("numeric-empty", '{"p": [{"numeric": []}]}', ATTRS, NUMERIC.format("Invalid member in numeric match: ]")),
    (
        "numeric-no-operator",
        '{"p": [{"numeric": [50, "<=", 100]}]}',
        ATTRS,
        NUMERIC.format("Invalid member in numeric match: 50"),
    ),
    ("numeric-missing-value", '{"p": [{"numeric": ["<"]}]}', ATTRS, NUMERIC.format("Value of < must be numeric")),
    (
        "numeric-bad-operator",
        '{"p": [{"numeric": ["0"]}]}',
        ATTRS,
        NUMERIC.format("Unrecognized numeric range operator: 0"),
    ),
    (
        "numeric-too-many",
        '{"p": [{"numeric": ["<", 20, ">", 1]}]}',
        ATTRS,
        NUMERIC.format("Too many elements in numeric expression"),
    ),
    (
        "numeric-bad-second",
        '{"p": [{"numeric": [">", 20, ">", 1]}]}',
        ATTRS,
        NUMERIC.format("Bad numeric range operator: >"),
    ),
    (
        "numeric-bottom-top",
        '{"p": [{"numeric": [">", 20, "<", 1]}]}',
        ATTRS,
        NUMERIC.format("Bottom must be less than top"),
    ),
    (
        "nested-in-attributes",
        '{"store": {"key": [{"exists": true}]}}',
        ATTRS,
        "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy",
    ),
    (
        "six-keys",
        json.dumps({k: ["v"] for k in "abcdef"}),
        ATTRS,
        "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys",
    ),
    ("scalar-value", '{"store": "x"}', ATTRS, 'Invalid parameter: FilterPolicy: "store" must be an object or an array'),
    ("empty-array", '{"store": []}', ATTRS, "Invalid parameter: FilterPolicy: Empty arrays are not allowed"),
    (
        "prefix-not-string",
        '{"store": [{"prefix": 5}]}',
        BODY,
        "Invalid parameter: FilterPolicy: prefix match pattern must be a string",
    ),
    (
        "anything-but-unknown",
        '{"s": [{"anything-but": {"unknown": "bas"}}]}',
        ATTRS,
        "Invalid parameter: FilterPolicy: Unsupported anything-but pattern: unknown",
    ),
    (
        "bad-scope",
        '{"s": ["x"]}',
        "Everything",
        "Invalid parameter: FilterPolicyScope: Invalid value [Everything]. "
        "Please use either MessageBody or MessageAttributes",
    ),
]


@pytest.mark.parametrize(("text", "scope", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_policies_are_refused_with_the_sns_error(text: str, scope: str, message: str) -> None:
    with pytest.raises(SnsError) as caught:
        parse_policy(text, scope)
    assert caught.value.code == "InvalidParameter"
    assert caught.value.query_code == "InvalidParameter"
    assert caught.value.message.startswith(message)


def test_number_beyond_a_billion_is_an_internal_error_as_in_sns() -> None:
    with pytest.raises(SnsError) as caught:
        parse_policy('{"store": [1000000001]}', ATTRS)
    assert caught.value.code == "InternalError"
    assert caught.value.status == 500
    assert caught.value.sender is False


def test_or_with_reserved_keys_is_an_ordinary_key() -> None:
    policy = parse_policy('{"$or": [{"numeric": ["=", 1]}, {"prefix": "a"}]}', ATTRS)
    assert policy.matches({"$or": n("1")}, "")
    assert not policy.matches({"x": n("1")}, "")


def test_nesting_within_limits_and_or_combinations_add_up() -> None:
    # 3 branches of 40 values each: 120 alternatives, within the 150 limit.
    branches = [{f"k{i}": [str(v) for v in range(40)]} for i in range(3)]
    parse_policy(json.dumps({"$or": branches}), ATTRS)
