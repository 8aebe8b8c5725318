"""SNS subscription filter policies: parsing with SNS's validation, and matching.

A policy is a JSON object. Each key names a message attribute (scope `MessageAttributes`) or a
property of the JSON message body (scope `MessageBody`, where objects nest); its value is a list of
match values, any of which may match (OR), and all keys must match (AND). `"$or": [{...}, {...}]`
ORs whole sub-policies. Match values: strings and numbers (exact), `null`, `true`/`false` (body),
and operator objects: `anything-but` (values, or `{"prefix"|"suffix"|"equals-ignore-case": ...}`),
`prefix`, `suffix`, `equals-ignore-case`, `numeric` (`["<", 10]`, `[">=", 0, "<", 10]`, `["=", 5]`),
`exists` (true/false) and `cidr`.

Matching is type-aware, as in SNS: a string match value matches only strings (a `String` attribute,
string elements of a `String.Array` attribute or of a body array), a number matches only numbers (a
`Number` attribute, numeric elements), compared with six decimal digits. `Binary` attributes are
never compared. Arrays match element-wise: a key matches when any element matches, except
`anything-but`, which needs every element to pass. In the body, arrays met on the way down a nested
key are flattened (a key inside a list of objects matches if it matches in any of them).

Errors are `SnsError("InvalidParameter", "Invalid parameter: FilterPolicy: ...")` with the texts
SNS (and moto, which copies them) use; an exact number beyond +-1e9 is SNS's `InternalError`.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from scte.queue.errors import SqsError

__all__ = [
    "MAX_COMBINATIONS",
    "MAX_KEYS",
    "MAX_POLICY_BYTES",
    "SCOPES",
    "FilterPolicy",
    "SnsError",
    "parse_policy",
]

SCOPES = ("MessageAttributes", "MessageBody")
MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_POLICY_BYTES = 256 * 1024
NUMBER_LIMIT = 1_000_000_000
_OPERATORS = frozenset(("anything-but", "prefix", "suffix", "equals-ignore-case", "numeric", "exists", "cidr"))
_NUMERIC_OPERATORS = ("<", "<=", "=", ">", ">=")


class SnsError(SqsError):
    """An SNS API error: `code` is the SNS error code (InvalidParameter, NotFound, ...).

    Unlike SQS, SNS has a single (query) protocol, so the code is reported as is.
    """

    @property
    def query_code(self) -> str:
        return self.code


def invalid(message: str) -> SnsError:
    return SnsError("InvalidParameter", message)


def _policy_error(reason: str) -> SnsError:
    return invalid(f"Invalid parameter: FilterPolicy: {reason}")


def _numeric_error(reason: str) -> SnsError:
    return invalid(f"Invalid parameter: Attributes Reason: FilterPolicy: {reason}\n at ...")


# -- values ---------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _norm(value: float) -> int:
    """Numbers compare with six decimal digits, as SNS does in practice."""
    return round(value * 1_000_000)


# -- matchers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Matcher:
    """One match value of a key: `test(present, values)` for the key's values in a message."""

    kind: str
    value: Any = None
    extra: Any = None

    def test(self, present: bool, values: Sequence[Any]) -> bool:
        kind = self.kind
        if kind == "exists":
            return present is self.value
        if not present or not values:
            return False
        if kind == "anything-but":
            return all(self._passes_anything_but(v) for v in values)
        return any(self._matches_one(v) for v in values)

    def _matches_one(self, v: Any) -> bool:
        kind = self.kind
        if kind == "string":
            return isinstance(v, str) and v == self.value
        if kind == "number":
            return _is_number(v) and _norm(v) == self.value
        if kind == "bool":
            return isinstance(v, bool) and v is self.value
        if kind == "null":
            return v is None
        if kind == "prefix":
            return isinstance(v, str) and v.startswith(self.value)
        if kind == "suffix":
            return isinstance(v, str) and v.endswith(self.value)
        if kind == "equals-ignore-case":
            return isinstance(v, str) and v.casefold() == self.value
        if kind == "numeric":
            if not _is_number(v):
                return False
            n = _norm(v)
            return all(_compare(n, op, bound) for op, bound in self.value)
        if kind == "cidr":
            if not isinstance(v, str):
                return False
            try:
                return ipaddress.ip_address(v) in self.value
            except ValueError:
                return False
        raise AssertionError(kind)  # pragma: no cover - parse_policy builds only the kinds above

    def _passes_anything_but(self, v: Any) -> bool:
        mode = self.extra
        if mode == "values":
            strings, numbers = self.value
            if isinstance(v, str):
                return v not in strings
            if _is_number(v):
                return _norm(v) not in numbers
            return True
        if not isinstance(v, str):
            return False
        if mode == "prefix":
            return not v.startswith(self.value)
        if mode == "suffix":
            return not v.endswith(self.value)
        return v.casefold() not in self.value  # equals-ignore-case


def _compare(n: int, op: str, bound: int) -> bool:
    if op == "<":
        return n < bound
    if op == "<=":
        return n <= bound
    if op == "=":
        return n == bound
    if op == ">":
        return n > bound
    return n >= bound


# -- the compiled policy --------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """An object of the policy: all its keys must match, and one branch of each `$or` group."""

    leaves: list[tuple[str, list[_Matcher]]] = field(default_factory=list)
    children: list[tuple[str, _Node]] = field(default_factory=list)
    ors: list[list[_Node]] = field(default_factory=list)


@dataclass(slots=True)
class FilterPolicy:
    """A validated filter policy; `matches()` decides whether a message is delivered."""

    scope: str
    root: _Node
    text: str

    @property
    def empty(self) -> bool:
        return not (self.root.leaves or self.root.children or self.root.ors)

    def matches(self, message_attributes: Mapping[str, Mapping[str, Any]] | None, body: str) -> bool:
        """True if a message with these attributes (SQS shape: DataType, StringValue | BinaryValue)
        and this body passes the policy."""
        if self.empty:
            return True
        if self.scope == "MessageAttributes":
            values = _attribute_values(message_attributes or {})
            return _match_attributes(self.root, values)
        try:
            document = json.loads(body)
        except (ValueError, TypeError):
            return False
        if not isinstance(document, dict):
            return False
        return _match_body(self.root, [document])


def _attribute_values(attrs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each attribute's comparable values: strings, numbers, or String.Array elements."""
    out: dict[str, list[Any]] = {}
    for name, attr in attrs.items():
        data_type = str(attr.get("DataType") or attr.get("Type") or "")
        base = data_type.partition(".")[0]
        raw = attr.get("StringValue", attr.get("Value"))
        values: list[Any] = []
        if data_type == "String.Array" or data_type.startswith("String.Array."):
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else None
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                values = [e for e in _flatten(parsed) if not isinstance(e, dict)]
            elif parsed is not None and not isinstance(parsed, dict):
                values = [parsed]
        elif base == "String" and isinstance(raw, str):
            values = [raw]
        elif base == "Number" and isinstance(raw, str):
            try:
                number = float(raw)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                values = [number]
        out[name] = values  # Binary attributes exist but have nothing to compare
    return out


def _match_attributes(node: _Node, values: Mapping[str, list[Any]]) -> bool:
    for name, matchers in node.leaves:
        present = name in values
        found = values.get(name, [])
        if not any(m.test(present, found) for m in matchers):
            return False
    return all(any(_match_attributes(branch, values) for branch in group) for group in node.ors)


def _flatten(items: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


def _match_body(node: _Node, containers: list[dict[str, Any]]) -> bool:
    for key, matchers in node.leaves:
        found = [c[key] for c in containers if key in c]
        values = [v for v in _flatten(found) if not isinstance(v, dict)]
        present = bool(values)  # `exists` applies to leaves: an object or an empty array is not one
        if not any(m.test(present, values) for m in matchers):
            return False
    for key, child in node.children:
        objects = [v for v in _flatten([c[key] for c in containers if key in c]) if isinstance(v, dict)]
        if not _match_body(child, objects):
            return False
    return all(any(_match_body(branch, containers) for branch in group) for group in node.ors)


# -- parsing --------------------------------------------------------------------------------------


def parse_policy(text: str, scope: str = "MessageAttributes") -> FilterPolicy:
    """Validate `text` as a filter policy for `scope`; raises `SnsError` as SNS would."""
    return _parse_cached(text, scope or "MessageAttributes")


@lru_cache(maxsize=1024)
def _parse_cached(text: str, scope: str) -> FilterPolicy:
    if scope not in SCOPES:
        raise invalid(
            f"Invalid parameter: FilterPolicyScope: Invalid value [{scope}]. "
            "Please use either MessageBody or MessageAttributes"
        )
    if not isinstance(text, str):
        raise _policy_error("Filter policy must be a JSON string")
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise _policy_error("Filter policy is too large")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _policy_error(f"failed to parse JSON. {exc}") from None
    if not isinstance(document, dict):
        raise _policy_error("Filter policy must be a JSON object")
    root = _parse_node(document, scope, depth=1)
    if _key_count(root) > MAX_KEYS:
        raise _policy_error(f"Filter policy can not have more than {MAX_KEYS} keys")
    if _combinations(root, depth=1) > MAX_COMBINATIONS:
        raise _policy_error("Filter policy is too complex")
    return FilterPolicy(scope=scope, root=root, text=text)


def _is_or_group(value: object) -> bool:
    """SNS reads `$or` as an operator only for a list of two or more objects without reserved keys."""
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, dict) for v in value)
        and not any(k in _OPERATORS for v in value for k in v)
    )


def _parse_node(obj: Mapping[str, Any], scope: str, depth: int) -> _Node:
    node = _Node()
    for key, value in obj.items():
        if key == "$or" and _is_or_group(value):
            node.ors.append([_parse_node(branch, scope, depth) for branch in value])
        elif isinstance(value, dict):
            if scope != "MessageBody":
                raise invalid(
                    "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy"
                )
            if not value:
                raise _policy_error(f'"{key}" must not be an empty object')
            node.children.append((key, _parse_node(value, scope, depth + 1)))
        elif isinstance(value, list):
            if not value:
                raise _policy_error("Empty arrays are not allowed")
            node.leaves.append((key, [_parse_value(v) for v in value]))
        else:
            raise _policy_error(f'"{key}" must be an object or an array')
    return node


def _check_number(value: float) -> None:
    if not -NUMBER_LIMIT < value < NUMBER_LIMIT:
        # What SNS answers (moto's tests pin it): a server-side error, not a validation message.
        raise SnsError("InternalError", "Unknown", status=500, sender=False)


def _parse_value(value: Any) -> _Matcher:
    if isinstance(value, bool):
        return _Matcher("bool", value)
    if value is None:
        return _Matcher("null")
    if isinstance(value, str):
        return _Matcher("string", value)
    if _is_number(value):
        _check_number(value)
        return _Matcher("number", _norm(value))
    if isinstance(value, dict):
        if len(value) != 1:
            raise _policy_error("Match value must be String, number, true, false, or null")
        ((keyword, argument),) = value.items()
        return _parse_operator(keyword, argument)
    raise _policy_error("Match value must be String, number, true, false, or null")


def _string_argument(keyword: str, argument: Any) -> str:
    if not isinstance(argument, str):
        raise _policy_error(f"{keyword} match pattern must be a string")
    return argument


def _parse_operator(keyword: str, argument: Any) -> _Matcher:
    if keyword == "exists":
        if not isinstance(argument, bool):
            raise _policy_error("exists match pattern must be either true or false.")
        return _Matcher("exists", argument)
    if keyword in ("prefix", "suffix"):
        return _Matcher(keyword, _string_argument(keyword, argument))
    if keyword == "equals-ignore-case":
        return _Matcher(keyword, _string_argument(keyword, argument).casefold())
    if keyword == "anything-but":
        return _parse_anything_but(argument)
    if keyword == "numeric":
        return _Matcher("numeric", _parse_numeric(argument))
    if keyword == "cidr":
        try:
            network = ipaddress.ip_network(_string_argument(keyword, argument), strict=False)
        except ValueError:
            raise _policy_error(f"Malformed CIDR, {argument}") from None
        return _Matcher("cidr", network)
    raise _policy_error(f"Unrecognized match type {keyword}")


def _parse_anything_but(argument: Any) -> _Matcher:
    if isinstance(argument, dict):
        if len(argument) != 1:
            raise _policy_error("Unsupported anything-but pattern")
        ((mode, pattern),) = argument.items()
        if mode not in ("prefix", "suffix", "equals-ignore-case"):
            raise _policy_error(f"Unsupported anything-but pattern: {mode}")
        if mode == "equals-ignore-case":
            items = pattern if isinstance(pattern, list) else [pattern]
            if not items or not all(isinstance(i, str) for i in items):
                raise _policy_error(
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                )
            return _Matcher("anything-but", frozenset(i.casefold() for i in items), "equals-ignore-case")
        return _Matcher("anything-but", _string_argument(mode, pattern), mode)
    items = argument if isinstance(argument, list) else [argument]
    if not items:
        raise _policy_error("Empty arrays are not allowed")
    strings: set[str] = set()
    numbers: set[int] = set()
    for item in items:
        if isinstance(item, str):
            strings.add(item)
        elif _is_number(item):
            _check_number(item)
            numbers.add(_norm(item))
        else:
            raise _policy_error("Value of anything-but must be an array or single string/number value.")
    return _Matcher("anything-but", (frozenset(strings), frozenset(numbers)), "values")


def _parse_numeric(argument: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(argument, list) or not argument:
        raise _numeric_error("Invalid member in numeric match: ]")
    items = list(argument)
    operator = items.pop(0)
    if not isinstance(operator, str):
        raise _numeric_error(f"Invalid member in numeric match: {operator}")
    if operator not in _NUMERIC_OPERATORS:
        raise _numeric_error(f"Unrecognized numeric range operator: {operator}")
    bound = items.pop(0) if items else None
    if not _is_number(bound):
        raise _numeric_error(f"Value of {operator} must be numeric")
    assert isinstance(bound, int | float)
    _check_number(bound)
    out = [(operator, _norm(bound))]
    if not items:
        return tuple(out)
    if operator not in (">", ">="):
        raise _numeric_error("Too many elements in numeric expression")
    second = items.pop(0)
    if second not in ("<", "<="):
        raise _numeric_error(f"Bad numeric range operator: {second}")
    top = items.pop(0) if items else None
    if not _is_number(top):
        raise _numeric_error(f"Value of {second} must be numeric")
    assert isinstance(top, int | float)
    _check_number(top)
    if top <= bound:
        raise _numeric_error("Bottom must be less than top")
    if items:
        raise _numeric_error("Too many elements in numeric expression")
    out.append((second, _norm(top)))
    return tuple(out)


def _key_count(node: _Node) -> int:
    """Keys of the top level (nested keys count as their parent), the largest `$or` branch added."""
    own = len(node.leaves) + len(node.children)
    return own + sum(max(_key_count(b) for b in group) for group in node.ors)


def _combinations(node: _Node, depth: int) -> int:
    """SNS's complexity: the product over the value lists of (number of values x nesting depth);
    `$or` branches are alternatives, so their combinations add up."""
    total = 1
    for _key, matchers in node.leaves:
        total *= len(matchers) * depth
    for _key, child in node.children:
        total *= _combinations(child, depth + 1)
    for group in node.ors:
        total *= sum(_combinations(branch, depth) for branch in group)
    return total
