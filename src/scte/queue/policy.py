"""Resource policies of queues and topics, read and evaluated the AWS way.

A policy is the JSON document AWS stores as a queue's or a topic's `Policy` attribute:

    {"Version": "2012-10-17",
     "Statement": [{"Sid": "...", "Effect": "Allow" | "Deny",
                    "Principal": "*" | {"AWS": ARN | [ARN...], "Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage" | [...],      (or NotAction; `*` and `?` wildcards)
                    "Resource": ARN | [...],                  (or NotResource; optional: the resource itself)
                    "Condition": {"ArnEquals": {"aws:SourceArn": ARN}}}]}

Evaluation follows AWS: an explicit `Deny` that matches wins; otherwise a matching `Allow` grants; otherwise
the request is denied, unless the caller owns the resource (the broker's admin principal, the account owner,
whose own permissions are everything: on AWS its identity policy). Service principals (one per SCTE service)
own nothing, so they get exactly what the policies grant them.

What is understood (anything else is refused as a malformed document, so that a document that works here
means the same on AWS): `Version` 2012-10-17 or 2008-10-17; principals `*`, `{"AWS": ...}` (an IAM ARN, an
account id or `arn:aws:iam::<account>:root`, which stand for the account owner) and `{"Service": ...}`;
`NotPrincipal`, `NotAction`, `NotResource`; condition operators String(Not)Equals(IgnoreCase), String(Not)Like,
Arn(Not)Equals, Arn(Not)Like, each also as `...IfExists`, and `Null`; condition keys aws:SourceArn,
aws:SourceAccount, aws:SourceOwner, aws:PrincipalArn and aws:PrincipalAccount (a key the request does not
have fails a positive operator and passes a negated one, as on AWS).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "SNS_SERVICE",
    "Decision",
    "Policy",
    "PolicyError",
    "Principal",
    "Request",
    "allows",
    "check_document",
    "parse",
]

VERSIONS = ("2012-10-17", "2008-10-17")
SNS_SERVICE = "sns.amazonaws.com"
MAX_POLICY_BYTES = 20 * 1024  # SNS's and SQS's limit on the document (SQS: 20 statements of 20 KB total)

Decision = Literal["Allow", "Deny"] | None


class PolicyError(ValueError):
    """A policy document the broker (and AWS) would not accept; `str()` says what is wrong."""

    code = "MalformedPolicyDocument"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request: an IAM ARN (`arn:aws:iam::<account>:role/scte-members`) and its account, or
    an AWS service (`service="sns.amazonaws.com"` for SNS delivering to a queue). `admin`: the account
    owner, who owns every queue and topic."""

    arn: str
    account: str
    admin: bool = False
    service: str | None = None

    @classmethod
    def root(cls, account: str) -> Principal:
        return cls(f"arn:aws:iam::{account}:root", account, admin=True)


@dataclass(frozen=True, slots=True)
class Request:
    """What a policy is asked about: who, which action (`sqs:SendMessage`), on which resource ARN, and
    for a service's request on behalf of a resource, that resource (`aws:SourceArn`)."""

    principal: Principal
    action: str
    resource: str
    source_arn: str | None = None
    source_account: str | None = None

    def value(self, key: str) -> str | None:
        """The request's value of a condition key (lower-cased name), None when it has none."""
        if key == "aws:sourcearn":
            return self.source_arn
        if key in ("aws:sourceaccount", "aws:sourceowner"):
            return self.source_account if self.source_account is not None else self.principal.account
        if key == "aws:principalarn":
            return None if self.principal.service else self.principal.arn
        if key == "aws:principalaccount":
            return None if self.principal.service else self.principal.account
        return None


CONDITION_KEYS = frozenset(
    ("aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:principalarn", "aws:principalaccount")
)

# -- wildcards ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """`*` any run of characters, `?` one character, the rest literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _any_like(patterns: Sequence[str], value: str, ignore_case: bool = False) -> bool:
    return any(_wildcard(p, ignore_case).fullmatch(value) is not None for p in patterns)


# -- conditions --------------------------------------------------------------------------------------------


def _equals(values: Sequence[str], value: str) -> bool:
    return value in values


def _equals_ignore_case(values: Sequence[str], value: str) -> bool:
    lowered = value.lower()
    return any(v.lower() == lowered for v in values)


def _like(values: Sequence[str], value: str) -> bool:
    return _any_like(values, value)


# operator (without IfExists) -> (test, negated)
_OPERATORS: dict[str, tuple[Callable[[Sequence[str], str], bool], bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringEqualsIgnoreCase": (_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_equals_ignore_case, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    # AWS lets ArnEquals use wildcards too: both compare as ArnLike does
    "ArnEquals": (_like, False),
    "ArnLike": (_like, False),
    "ArnNotEquals": (_like, True),
    "ArnNotLike": (_like, True),
}


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str
    key: str  # lower-cased
    values: tuple[str, ...]

    def holds(self, request: Request) -> bool:
        value = request.value(self.key)
        if self.operator == "Null":
            return (value is None) == (self.values[0] == "true")
        name = self.operator
        if_exists = name.endswith("IfExists")
        if if_exists:
            name = name[: -len("IfExists")]
        test, negated = _OPERATORS[name]
        if value is None:
            return if_exists or negated
        return test(self.values, value) != negated


# -- statements --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principals:
    """A statement's `Principal` (or `NotPrincipal`): everyone, or these IAM ARNs / accounts / services."""

    anyone: bool
    arns: tuple[str, ...]
    accounts: tuple[str, ...]  # account ids given as such, or as arn:aws:iam::<id>:root: the account owner
    services: tuple[str, ...]

    def match(self, principal: Principal) -> bool:
        if self.anyone:
            return True
        if principal.service is not None:
            return principal.service in self.services
        if principal.admin and principal.account in self.accounts:
            return True
        return _any_like(self.arns, principal.arn) if self.arns else False


@dataclass(frozen=True, slots=True)
class Statement:
    sid: str | None
    effect: Literal["Allow", "Deny"]
    principals: Principals
    not_principal: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None  # None: the resource the policy is attached to
    not_resource: bool
    conditions: tuple[Condition, ...]

    def applies(self, request: Request) -> bool:
        if self.principals.match(request.principal) == self.not_principal:
            return False
        if _any_like(self.actions, request.action, ignore_case=True) == self.not_action:
            return False
        if self.resources is not None and _any_like(self.resources, request.resource) == self.not_resource:
            return False
        return all(c.holds(request) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document."""

    statements: tuple[Statement, ...]

    def decide(self, request: Request) -> Decision:
        """`Deny` if a Deny statement applies, else `Allow` if an Allow statement does, else None."""
        allowed = False
        for statement in self.statements:
            if statement.applies(request):
                if statement.effect == "Deny":
                    return "Deny"
                allowed = True
        return "Allow" if allowed else None


# -- parsing -----------------------------------------------------------------------------------------------

_TOP_KEYS = frozenset(("Version", "Id", "Statement"))
_STATEMENT_KEYS = frozenset(
    ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition")
)
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_ACCOUNT = re.compile(r"[0-9]{12}")
_ROOT = re.compile(r"arn:aws:iam::([0-9]{12}):root")
_IAM_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[A-Za-z0-9+=,.@_/*?-]+")
_ARN = re.compile(r"\*|arn:[^:\s]*:[^:\s]*:[^:\s]*:[^:\s]*:\S+")


def _strings(where: str, value: object, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A string or a list of strings, as policy elements are written."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"{where} must be a string or a list of strings")
    if not items and not allow_empty:
        raise PolicyError(f"{where} must not be empty")
    return tuple(items)


def _principals(where: str, value: object) -> Principals:
    if value == "*":
        return Principals(True, (), (), ())
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{where} must be "*" or an object such as {{"AWS": "<ARN>"}}')
    arns: list[str] = []
    accounts: list[str] = []
    services: list[str] = []
    for kind, given in value.items():
        names = _strings(f"{where}.{kind}", given)
        if kind == "AWS":
            for name in names:
                root = _ROOT.fullmatch(name)
                if name == "*":
                    return Principals(True, (), (), ())
                if _ACCOUNT.fullmatch(name):
                    accounts.append(name)
                elif root is not None:
                    accounts.append(root.group(1))
                elif _IAM_ARN.fullmatch(name):
                    arns.append(name)
                else:
                    raise PolicyError(f"{where}: invalid principal {name!r} (an IAM ARN or a 12-digit account id)")
        elif kind == "Service":
            for name in names:
                if not re.fullmatch(r"[a-z0-9.-]+\.amazonaws\.com", name):
                    raise PolicyError(f"{where}: invalid service principal {name!r}")
            services.extend(names)
        elif kind in ("Federated", "CanonicalUser"):
            raise PolicyError(f"{where}: {kind} principals are not supported by this broker")
        else:
            raise PolicyError(f"{where}: unknown principal type {kind!r}")
    return Principals(False, tuple(arns), tuple(accounts), tuple(services))


def _conditions(where: str, value: object) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be an object of operators")
    out: list[Condition] = []
    for operator, block in value.items():
        base = operator[: -len("IfExists")] if operator.endswith("IfExists") else operator
        if operator != "Null" and base not in _OPERATORS:
            raise PolicyError(f"{where}: unsupported condition operator {operator!r}")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}.{operator} must be an object of condition keys")
        for key, raw in block.items():
            lowered = key.lower() if isinstance(key, str) else ""
            if lowered not in CONDITION_KEYS:
                raise PolicyError(f"{where}.{operator}: unsupported condition key {key!r}")
            values = _strings(f"{where}.{operator}.{key}", raw)
            if operator == "Null" and (len(values) != 1 or values[0] not in ("true", "false")):
                raise PolicyError(f'{where}.Null.{key} must be "true" or "false"')
            out.append(Condition(operator, lowered, values))
    return tuple(out)


def _statement(index: int, raw: object) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown element {sorted(unknown)[0]!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}.Effect must be "Allow" or "Deny"')
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise PolicyError(f"{where} needs one of Principal or NotPrincipal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where} needs one of Action or NotAction")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError(f"{where} has both Resource and NotResource")
    principal_key = "Principal" if "Principal" in raw else "NotPrincipal"
    action_key = "Action" if "Action" in raw else "NotAction"
    actions = _strings(f"{where}.{action_key}", raw[action_key])
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise PolicyError(f"{where}.{action_key}: invalid action {action!r} (service:Action, e.g. sqs:SendMessage)")
    resources: tuple[str, ...] | None = None
    resource_key = "NotResource" if "NotResource" in raw else "Resource"
    if resource_key in raw:
        resources = _strings(f"{where}.{resource_key}", raw[resource_key])
        for resource in resources:
            if not _ARN.fullmatch(resource):
                raise PolicyError(f"{where}.{resource_key}: invalid resource {resource!r} (an ARN or *)")
    return Statement(
        sid=sid,
        effect=effect,
        principals=_principals(f"{where}.{principal_key}", raw[principal_key]),
        not_principal=principal_key == "NotPrincipal",
        actions=actions,
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=resource_key == "NotResource",
        conditions=_conditions(f"{where}.Condition", raw["Condition"]) if "Condition" in raw else (),
    )


def check_document(document: object) -> Policy:
    """A policy document (parsed JSON) -> `Policy`; `PolicyError` saying what is wrong otherwise."""
    if not isinstance(document, dict):
        raise PolicyError("the policy must be a JSON object")
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise PolicyError(f"unknown element {sorted(unknown)[0]!r}")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"Version must be {' or '.join(VERSIONS)}")
    if "Id" in document and not isinstance(document["Id"], str):
        raise PolicyError("Id must be a string")
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise PolicyError("Statement must be an object or a non-empty list of objects")
    return Policy(tuple(_statement(i, s) for i, s in enumerate(statements)))


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Policy:
    """A policy document (JSON text) -> `Policy` (cached: a queue's policy is read on every request)."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"the policy is longer than {MAX_POLICY_BYTES} bytes")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PolicyError(f"the policy is not valid JSON ({exc})") from None
    return check_document(document)


@functools.lru_cache(maxsize=16384)
def allows(policy: str | None, request: Request) -> bool:
    """Whether `request` may proceed on a resource whose `Policy` attribute is `policy` (None: no policy).

    Explicit Deny wins; then Allow; then only the owner (the admin principal) may. Cached per (policy text,
    request): the same service making the same call on the same queue is one dictionary look-up.
    A stored policy that no longer parses grants nothing (the owner keeps access to fix it)."""
    decision: Decision = None
    if policy:
        try:
            decision = parse(policy).decide(request)
        except PolicyError:
            decision = None
    if decision == "Deny":
        return False
    return decision == "Allow" or request.principal.admin


def grants(policy: Mapping[str, Any], request: Request) -> bool:
    """`allows` for a document given as a mapping (tests, and the deployment's own check of what it derives)."""
    return allows(json.dumps(policy, sort_keys=True), request)
