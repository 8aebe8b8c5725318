"""Request validation with AWS SQS's rules, error codes and messages; pure functions, no storage.

The engine calls these before it changes anything, so every rejection happens with nothing half-done. Error
codes are the ones AWS returns (the botocore model's shapes), because SDKs and user code branch on them.
Messages keep AWS's wording where clients or moto's test suite (which runs against our server) compare them
exactly, and otherwise name the parameter, the bad value and what is allowed, so a person can fix the call.

Queue attributes are kept as the strings the API carries: booleans as lowercase "true"/"false", integers in
canonical decimal, RedrivePolicy/RedriveAllowPolicy as re-serialised JSON. Normalising on the way in is what
makes CreateQueue idempotency a plain string comparison.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from scte.queue.errors import SqsError, invalid_parameter, missing_parameter

__all__ = [
    "DEFAULT_FIFO_ATTRIBUTES",
    "DEFAULT_STANDARD_ATTRIBUTES",
    "FIFO_ONLY_ATTRIBUTE_NAMES",
    "INTEGER_ATTRIBUTE_RANGES",
    "MAX_BATCH_ENTRIES",
    "MAX_MESSAGE_ATTRIBUTES",
    "MAX_MESSAGE_SIZE",
    "QUEUE_ATTRIBUTE_NAMES",
    "READ_ONLY_ATTRIBUTE_NAMES",
    "SETTABLE_ATTRIBUTE_NAMES",
    "attributes_equal_for_create",
    "changed_queue_attributes",
    "content_dedup_id",
    "message_size",
    "new_queue_attributes",
    "parse_redrive_policy",
    "utf8_len",
    "validate_attribute_names",
    "validate_batch_entries",
    "validate_dedup_id",
    "validate_group_id",
    "validate_int_param",
    "validate_message_attributes",
    "validate_message_body",
    "validate_queue_name",
]

# ---------------------------------------------------------------------------------------------------------
# Queue attributes
# ---------------------------------------------------------------------------------------------------------

READ_ONLY_ATTRIBUTE_NAMES: Final = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "QueueArn",
    }
)
"""Computed by the engine and returned by GetQueueAttributes; CreateQueue/SetQueueAttributes refuse them."""

SETTABLE_ATTRIBUTE_NAMES: Final = frozenset(
    {
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
        "MaximumMessageSize",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "Policy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
    }
)

QUEUE_ATTRIBUTE_NAMES: Final = READ_ONLY_ATTRIBUTE_NAMES | SETTABLE_ATTRIBUTE_NAMES
"""Every QueueAttributeName of the botocore model except the pseudo-name `All`."""

FIFO_ONLY_ATTRIBUTE_NAMES: Final = frozenset({"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"})

INTEGER_ATTRIBUTE_RANGES: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "VisibilityTimeout": (0, 43_200),
        "MessageRetentionPeriod": (60, 1_209_600),
        "DelaySeconds": (0, 900),
        "ReceiveMessageWaitTimeSeconds": (0, 20),
        "MaximumMessageSize": (1_024, 1_048_576),
        "KmsDataKeyReusePeriodSeconds": (60, 86_400),
    }
)

MAX_MESSAGE_SIZE: Final = 1_048_576
MAX_MESSAGE_ATTRIBUTES: Final = 10
MAX_BATCH_ENTRIES: Final = 10
DEFAULT_KMS_DATA_KEY_REUSE_PERIOD: Final = "300"

DEFAULT_STANDARD_ATTRIBUTES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "VisibilityTimeout": "30",
        "MaximumMessageSize": str(MAX_MESSAGE_SIZE),
        "MessageRetentionPeriod": "345600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        # New queues get SSE-SQS unless a KMS key is given (AWS default since 2022; moto, LocalStack agree).
        "SqsManagedSseEnabled": "true",
    }
)
"""The stored attributes of a standard queue created without attributes (GetQueueAttributes All adds the
read-only ones)."""

DEFAULT_FIFO_ATTRIBUTES: Final[Mapping[str, str]] = MappingProxyType(
    {
        **DEFAULT_STANDARD_ATTRIBUTES,
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }
)

_ENUM_VALUES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "DeduplicationScope": ("messageGroup", "queue"),
        "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
    }
)
_BOOLEAN_ATTRIBUTES: Final = frozenset({"FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"})
# Setting these to "" removes them (AWS and moto both behave so for Policy and RedrivePolicy).
_REMOVABLE_BY_EMPTY: Final = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId"})

_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_QUEUE_ARN: Final = re.compile(r"arn:aws(?:-[a-z]+)*:sqs:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]{1,80}(?:\.fifo)?)")

_NAME_ERROR: Final = "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
_FIFO_NAME_ERROR: Final = (
    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, "
    "must end with .fifo suffix and be 1 to 80 in length"
)


def _attribute_value_error(name: str, reason: str) -> SqsError:
    # AWS: "Invalid value for the parameter X." (+ " Reason: ..." where it gives one).
    return SqsError("InvalidAttributeValue", f"Invalid value for the parameter {name}. Reason: {reason}")


def _unknown_attribute(name: str, hint: str = "") -> SqsError:
    message = f"Unknown Attribute {name}."
    return SqsError("InvalidAttributeName", f"{message} {hint}" if hint else message)


def validate_queue_name(name: str, fifo: bool) -> None:
    """Check a CreateQueue QueueName: 1..80 of `[A-Za-z0-9_-]`; a `.fifo` suffix (counted in the 80) iff FIFO.

    The messages are AWS's: moto's test suite compares the standard-queue one exactly.
    """
    if fifo:
        if _FIFO_QUEUE_NAME.fullmatch(name) is None:
            raise invalid_parameter(_FIFO_NAME_ERROR)
    elif _QUEUE_NAME.fullmatch(name) is None:
        # Includes "x.fifo" without FifoQueue=true: AWS answers with the plain name rule.
        raise invalid_parameter(_NAME_ERROR)


def _clean_names(attributes: Mapping[str, str]) -> dict[str, str]:
    """Attribute names with surrounding whitespace removed.

    Some callers pad names (moto's own suite sends "VisibilityTimeout " and expects it applied); a padded
    name can only ever mean the trimmed one, so we accept it rather than fail the whole call.
    """
    return {key.strip(): value for key, value in attributes.items()}


def _require_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _attribute_value_error(name, f"the value must be a string, got {value!r}.")
    return value


def _parse_bool(name: str, value: str) -> str:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise _attribute_value_error(name, f"must be true or false, got '{value}'.")
    return lowered


def _parse_int_attribute(name: str, value: str) -> str:
    low, high = INTEGER_ATTRIBUTE_RANGES[name]
    if _INT_TEXT.fullmatch(value) is None or not low <= int(value) <= high:
        raise _attribute_value_error(name, f"must be an integer from {low} to {high}, got '{value}'.")
    return str(int(value))


def _queue_name_of_arn(arn: object) -> str | None:
    """The queue name of a well-formed SQS queue ARN, else None."""
    if not isinstance(arn, str):
        return None
    match = _QUEUE_ARN.fullmatch(arn)
    if match is None or len(match.group(1)) > 80:
        return None
    return match.group(1)


def _redrive_error(value: str, reason: str) -> SqsError:
    return invalid_parameter(f"Value {value} for parameter RedrivePolicy is invalid. Reason: {reason}")


def parse_redrive_policy(value: str) -> tuple[str, int]:
    """Validate a RedrivePolicy JSON document; return (deadLetterTargetArn, maxReceiveCount).

    maxReceiveCount may be a JSON integer or a numeric string ("5"), as AWS accepts both. Whether the
    target exists and has the same queue type is the engine's check: it needs storage.
    """
    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise _redrive_error(
            value,
            'Redrive policy is not a valid JSON object; expected {"deadLetterTargetArn": "<queue arn>", '
            '"maxReceiveCount": <1-1000>}.',
        )
    for key in ("deadLetterTargetArn", "maxReceiveCount"):
        if key not in document:
            raise _redrive_error(value, f"Redrive policy does not contain mandatory attribute: {key}.")
    arn = document["deadLetterTargetArn"]
    if not isinstance(arn, str) or _queue_name_of_arn(arn) is None:
        raise _redrive_error(
            value,
            f"Invalid value for deadLetterTargetArn: {arn}; expected an SQS queue ARN "
            "arn:aws:sqs:<region>:<12-digit account>:<queue name>.",
        )
    raw_count = document["maxReceiveCount"]
    count: int | None = None
    if isinstance(raw_count, int) and not isinstance(raw_count, bool):
        count = raw_count
    elif isinstance(raw_count, str) and _INT_TEXT.fullmatch(raw_count):
        count = int(raw_count)
    if count is None or not 1 <= count <= 1000:
        raise _redrive_error(
            value,
            f"Invalid value for maxReceiveCount: {raw_count}, valid values are from 1 to 1000 both inclusive.",
        )
    return arn, count


def _normalize_redrive_policy(value: str) -> str:
    arn, count = parse_redrive_policy(value)
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": count})


def _normalize_redrive_allow_policy(value: str) -> str:
    def error(reason: str) -> SqsError:
        return invalid_parameter(f"Value {value} for parameter RedriveAllowPolicy is invalid. Reason: {reason}")

    try:
        document = json.loads(value)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise error(
            'Redrive allow policy is not a valid JSON object; expected {"redrivePermission": '
            '"allowAll|denyAll|byQueue", "sourceQueueArns": [...]}.'
        )
    permission = document.get("redrivePermission")
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise error(f"redrivePermission must be allowAll, denyAll or byQueue, got {permission!r}.")
    arns = document.get("sourceQueueArns")
    if permission != "byQueue":
        if arns is not None:
            raise error(f"sourceQueueArns can be given only when redrivePermission is byQueue, not {permission}.")
        return json.dumps({"redrivePermission": permission})
    if not isinstance(arns, list) or not 1 <= len(arns) <= 10:
        raise error("redrivePermission byQueue needs sourceQueueArns: a list of 1 to 10 SQS queue ARNs.")
    for arn in arns:
        if _queue_name_of_arn(arn) is None:
            raise error(f"{arn!r} in sourceQueueArns is not an SQS queue ARN arn:aws:sqs:<region>:<account>:<name>.")
    return json.dumps({"redrivePermission": permission, "sourceQueueArns": arns})


def _normalize_policy(value: str) -> str:
    try:
        document = json.loads(value)
    except ValueError as exc:
        raise _attribute_value_error("Policy", f"the policy is not valid JSON ({exc}).") from None
    if not isinstance(document, dict):
        raise _attribute_value_error("Policy", "the policy must be a JSON object.")
    return value  # kept as sent: AWS returns the document the caller stored


def _normalize_value(name: str, raw: object) -> str | None:
    """Validate one settable attribute; the canonical stored string, or None to remove the attribute."""
    value = _require_str(name, raw)
    if value == "" and name in _REMOVABLE_BY_EMPTY:
        return None
    if name in INTEGER_ATTRIBUTE_RANGES:
        return _parse_int_attribute(name, value)
    if name in _BOOLEAN_ATTRIBUTES:
        return _parse_bool(name, value)
    if name in _ENUM_VALUES:
        allowed = _ENUM_VALUES[name]
        if value not in allowed:
            raise _attribute_value_error(name, f"must be {' or '.join(allowed)}, got '{value}'.")
        return value
    if name == "RedrivePolicy":
        return _normalize_redrive_policy(value)
    if name == "RedriveAllowPolicy":
        return _normalize_redrive_allow_policy(value)
    if name == "Policy":
        return _normalize_policy(value)
    # KmsMasterKeyId: any key id, alias or ARN; KMS itself is out of scope for this broker.
    return value


def _check_names(names: Sequence[str], fifo: bool) -> None:
    for name in names:
        if name in READ_ONLY_ATTRIBUTE_NAMES:
            raise _unknown_attribute(name, f"{name} is read-only: GetQueueAttributes returns it, it cannot be set.")
        if name not in SETTABLE_ATTRIBUTE_NAMES:
            raise _unknown_attribute(name)
        if not fifo and name == "ContentBasedDeduplication":
            raise _unknown_attribute(name, "ContentBasedDeduplication applies only to FIFO queues (FifoQueue=true).")
        if not fifo and name in FIFO_ONLY_ATTRIBUTE_NAMES:
            raise SqsError("InvalidAttributeName", f"You can specify the {name} only when FifoQueue is set to true.")


def _reconcile(result: dict[str, str], changes: Mapping[str, str | None]) -> None:
    """Apply the rules that tie attributes together, after `changes` were merged into `result`."""
    # Encryption: a KMS key means SSE-KMS, which excludes SSE-SQS. Giving a key switches SqsManagedSseEnabled
    # off unless the same request asks for it on, which contradicts itself.
    if "KmsMasterKeyId" in changes:
        if changes["KmsMasterKeyId"] is None:
            # AWS: no key, no data key reuse period (even one set in the same request).
            result.pop("KmsDataKeyReusePeriodSeconds", None)
        else:
            if changes.get("SqsManagedSseEnabled") != "true":
                result["SqsManagedSseEnabled"] = "false"
            result.setdefault("KmsDataKeyReusePeriodSeconds", DEFAULT_KMS_DATA_KEY_REUSE_PERIOD)
    if result.get("SqsManagedSseEnabled") == "true" and "KmsMasterKeyId" in result:
        raise _attribute_value_error(
            "SqsManagedSseEnabled",
            "only one server-side encryption option is supported per queue: use SqsManagedSseEnabled=true "
            "(SSE-SQS) or KmsMasterKeyId (SSE-KMS), not both; to switch to SSE-SQS also set KmsMasterKeyId "
            'to "".',
        )
    if result.get("FifoThroughputLimit") == "perMessageGroupId" and result.get("DeduplicationScope") != "messageGroup":
        raise _attribute_value_error(
            "FifoThroughputLimit",
            "perMessageGroupId is allowed only when DeduplicationScope is messageGroup "
            f"(it is {result.get('DeduplicationScope')}).",
        )


def _fifo_requested(attributes: Mapping[str, str]) -> bool:
    if "FifoQueue" not in attributes:
        return False
    return _parse_bool("FifoQueue", _require_str("FifoQueue", attributes["FifoQueue"])) == "true"


def new_queue_attributes(name: str, attributes: Mapping[str, str]) -> dict[str, str]:
    """Validate CreateQueue's name and Attributes; return the full stored attribute set, defaults filled in.

    `FifoQueue=false` is refused as AWS refuses it: a standard queue knows no FifoQueue attribute
    ("Unknown Attribute FifoQueue."). A KMS key turns SSE-SQS off and brings KmsDataKeyReusePeriodSeconds
    (default 300).
    """
    requested = _clean_names(attributes)
    if "FifoQueue" in requested and not _fifo_requested(requested):
        raise SqsError("InvalidAttributeName", "Unknown Attribute FifoQueue.")
    _check_names([key for key in requested if key not in FIFO_ONLY_ATTRIBUTE_NAMES], fifo=True)
    fifo = _fifo_requested(requested)
    validate_queue_name(name, fifo)
    _check_names(list(requested), fifo)
    changes = {key: _normalize_value(key, value) for key, value in requested.items() if key != "FifoQueue"}
    result = dict(DEFAULT_FIFO_ATTRIBUTES if fifo else DEFAULT_STANDARD_ATTRIBUTES)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    _reconcile(result, changes)
    return result


def changed_queue_attributes(current: Mapping[str, str], fifo: bool, changes: Mapping[str, str]) -> dict[str, str]:
    """Validate SetQueueAttributes' Attributes against a queue; return its new full attribute set.

    The queue type is fixed at creation: FifoQueue is refused on a standard queue (AWS: unknown attribute) and
    may only be restated as true on a FIFO queue. "" removes Policy, RedrivePolicy, RedriveAllowPolicy and
    KmsMasterKeyId. Nothing is applied unless every attribute is valid.
    """
    requested = _clean_names(changes)
    for key, value in requested.items():
        if key == "FifoQueue":
            if not fifo:
                raise _unknown_attribute(key, "The queue type is fixed when the queue is created.")
            if _parse_bool(key, _require_str(key, value)) != "true":
                raise _attribute_value_error(key, "Modifying queue type is not supported.")
    _check_names([key for key in requested if key != "FifoQueue"], fifo)
    normalized = {key: _normalize_value(key, value) for key, value in requested.items() if key != "FifoQueue"}
    result = dict(current)
    for key, new in normalized.items():
        if new is None:
            result.pop(key, None)
        else:
            result[key] = new
    _reconcile(result, normalized)
    return result


def attributes_equal_for_create(existing: Mapping[str, str], requested: Mapping[str, str]) -> bool:
    """Whether a CreateQueue for an existing name matches it, so AWS returns the existing URL.

    Only the attributes in the request are compared (AWS and moto: a bare CreateQueue of an existing queue
    succeeds whatever its attributes), each after the same validation and normalisation as
    `new_queue_attributes`; an attribute the queue does not store compares against its default (or absence).
    Invalid requested values raise the same errors CreateQueue would.
    """
    fifo = existing.get("FifoQueue") == "true"
    cleaned = _clean_names(requested)
    _check_names([key for key in cleaned if key not in FIFO_ONLY_ATTRIBUTE_NAMES], fifo=True)
    if _fifo_requested(cleaned) != fifo:
        return False
    _check_names(list(cleaned), fifo)
    defaults = DEFAULT_FIFO_ATTRIBUTES if fifo else DEFAULT_STANDARD_ATTRIBUTES
    for key, value in cleaned.items():
        if key == "FifoQueue":
            continue
        wanted = _normalize_value(key, value)
        have = existing.get(key, defaults.get(key))
        if wanted != have:
            return False
    return True


def validate_attribute_names(names: Sequence[str]) -> list[str]:
    """Validate GetQueueAttributes' AttributeNames; return the attribute names to report.

    `All` expands to every attribute name; the engine reports those the queue has. The first unknown name
    is the error, with AWS's exact message (moto's suite checks "Unknown Attribute not-existing." and
    "Unknown Attribute ."). An empty list is valid and selects nothing.
    """
    for name in names:
        if name != "All" and name not in QUEUE_ATTRIBUTE_NAMES:
            raise _unknown_attribute(name)
    if "All" in names:
        return sorted(QUEUE_ATTRIBUTE_NAMES)
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------

# Anything outside XML 1.0's Char production; a lone surrogate in a Python str is invalid as well.
_INVALID_BODY_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INVALID_CHARS_MESSAGE: Final = (
    "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | "
    "#xE000 to #xFFFD | #x10000 to #x10FFFF"
)


def _first_invalid_char(text: str) -> str | None:
    if text.isascii() and text.isprintable():  # the usual body: two C scans instead of a regex search
        return None
    match = _INVALID_BODY_CHAR.search(text)
    if match is None:
        return None
    return f"first invalid character U+{ord(match.group()):04X} at position {match.start()}"


def validate_message_body(body: str) -> None:
    """Refuse an empty body (MissingParameter, as AWS) or characters outside XML 1.0 (InvalidMessageContents).

    Runs on every send, so it is one precompiled regex search over the body.
    """
    if not body:
        raise missing_parameter("MessageBody")
    where = _first_invalid_char(body)
    if where is not None:
        raise SqsError("InvalidMessageContents", f"{_INVALID_CHARS_MESSAGE} ({where}).")


# AWS: "alphanumeric characters and the underscore (_), hyphen (-), and period (.)": Unicode letters and
# digits count (AWS accepts `attr.1øßä`), hence \w rather than [A-Za-z0-9_].
_ATTRIBUTE_NAME: Final = re.compile(r"[\w.\-]+")
_RESERVED_PREFIX: Final = re.compile(r"(?:aws|amazon)\.", re.IGNORECASE)
# A custom label (`String.json`, `Number.java.lang.Long`) is printable ASCII after the first dot.
_DATA_TYPE: Final = re.compile(r"(String|Number|Binary)(\.[!-~]+)?")
_NUMBER_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_MAX: Final = Decimal("1e126")
_NUMBER_MIN_MAGNITUDE: Final = Decimal("1e-128")
_NUMBER_PRECISION: Final = 38


def _check_number(name: str, text: str) -> None:
    if _NUMBER_TEXT.fullmatch(text) is None:
        raise invalid_parameter(f"Can't cast the value of message (user) attribute '{name}' to a number: '{text}'.")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only what Decimal parses
        raise invalid_parameter(f"Can't cast the value of message (user) attribute '{name}' to a number.") from None
    digits = number.as_tuple().digits
    significant = len("".join(map(str, digits)).strip("0")) if number else 1
    magnitude = abs(number)
    if (
        significant > _NUMBER_PRECISION
        or magnitude > _NUMBER_MAX
        or (magnitude != 0 and magnitude < _NUMBER_MIN_MAGNITUDE)
    ):
        raise invalid_parameter(
            f"Value {text} of message (user) attribute '{name}' is out of range: numbers can have up to 38 "
            "digits of precision and a magnitude between 10^-128 and 10^+126."
        )


# Attribute names and data types that passed the checks (bounded): a service sends the same few with
# every message, and the checks are most of the cost of an attribute.
_GOOD_NAMES: set[str] = set()
_GOOD_TYPES: dict[str, str] = {}  # data type -> its base type (String, Number, Binary)
_GOOD_LIMIT = 4096


def _check_attribute_name(name: object) -> str:
    if type(name) is str and name in _GOOD_NAMES:
        return name
    if not isinstance(name, str) or not name:
        raise invalid_parameter("Message (user) attribute names must not be empty.")
    if len(name) > 256:
        raise invalid_parameter(
            f"Message (user) attribute name '{name[:32]}...' is {len(name)} characters long; the limit is 256."
        )
    if _ATTRIBUTE_NAME.fullmatch(name) is None:
        # moto's suite compares this code and text exactly.
        raise SqsError(
            "MessageAttributesInvalid",
            f"The message attribute name '{name}' is invalid. Attribute name can contain A-Z, a-z, 0-9, "
            "underscore (_), hyphen (-), and period (.) characters.",
        )
    if _RESERVED_PREFIX.match(name) or name.startswith(".") or name.endswith("."):
        raise invalid_parameter(
            f"Message (user) attribute name '{name}' is invalid: you can't use message attribute names "
            "beginning with 'AWS.' or 'Amazon.'. These strings are reserved for internal use. Additionally, "
            "they cannot start or end with '.'."
        )
    if ".." in name:
        raise invalid_parameter(
            f"Message (user) attribute name '{name}' is invalid: it cannot contain consecutive periods ('..')."
        )
    if type(name) is str and len(_GOOD_NAMES) < _GOOD_LIMIT:
        _GOOD_NAMES.add(name)
    return name


def _check_data_type(name: str, data_type: object) -> str:
    """A message attribute's DataType checked; returns its base type (String, Number or Binary)."""
    if not isinstance(data_type, str) or not data_type:
        raise invalid_parameter(
            f"Message (user) attribute '{name}' must contain a non-empty DataType "
            "(String, Number or Binary, "
            "optionally followed by .label)."
        )
    match = _DATA_TYPE.fullmatch(data_type)
    if match is None:
        # moto's suite compares this code and text exactly.
        raise SqsError(
            "MessageAttributesInvalid",
            f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
            "type prefixes is Binary, Number, and String.",
        )
    if len(data_type) > 256:
        raise invalid_parameter(
            f"Message (user) attribute '{name}' has a DataType of {len(data_type)} characters; the limit is 256."
        )
    base_type = match.group(1)
    if type(data_type) is str and len(_GOOD_TYPES) < _GOOD_LIMIT:
        _GOOD_TYPES[data_type] = base_type
    return base_type


def validate_message_attributes(attrs: Mapping[str, Mapping[str, object]]) -> None:
    """Validate SendMessage MessageAttributes: count, names, data types and values, as AWS does.

    An attribute value is `{"DataType": ..., "StringValue": str}` or `{"DataType": ..., "BinaryValue": bytes}`
    (the wire layer has already base64-decoded binary values). String values obey the body's character rule.
    """
    if len(attrs) > MAX_MESSAGE_ATTRIBUTES:
        raise invalid_parameter(
            f"Number of message attributes [{len(attrs)}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}]."
        )
    for raw_name, attr in attrs.items():
        name = _check_attribute_name(raw_name)
        if type(attr) is not dict and not isinstance(attr, Mapping):
            raise invalid_parameter(f"Message (user) attribute '{name}' must be a structure with DataType and a value.")
        data_type = attr.get("DataType")
        base_type = _GOOD_TYPES.get(data_type) if type(data_type) is str else None
        if base_type is None:
            base_type = _check_data_type(name, data_type)
        for list_field in ("StringListValues", "BinaryListValues"):
            if attr.get(list_field):
                raise invalid_parameter(
                    f"Message (user) attribute '{name}' uses {list_field}, which SQS does not implement "
                    "(reserved for future use); send the value in StringValue or BinaryValue."
                )
        if base_type == "Binary":
            value = attr.get("BinaryValue")
            if not isinstance(value, bytes | bytearray | memoryview) or len(value) == 0:
                raise invalid_parameter(
                    f"Message (user) attribute '{name}' must contain a non-empty value of type 'Binary' in BinaryValue."
                )
            continue
        text = attr.get("StringValue")
        if (type(text) is not str and not isinstance(text, str)) or not text:
            raise invalid_parameter(
                f"Message (user) attribute '{name}' must contain a non-empty value of type '{base_type}' "
                "in StringValue."
            )
        where = _first_invalid_char(text)
        if where is not None:
            # AWS reports this as InvalidParameterValue, not InvalidMessageContents.
            raise invalid_parameter(f"Message (user) attribute '{name}': {_INVALID_CHARS_MESSAGE} ({where}).")
        if base_type == "Number":
            _check_number(name, text)


def utf8_len(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII (a flag of the string, O(1))."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def message_size(body: str, attrs: Mapping[str, Mapping[str, object]]) -> int:
    """Bytes counted against MaximumMessageSize: the UTF-8 body plus, per attribute, name + data type + value.

    Call after `validate_message_attributes`; a value of any other kind counts as empty.
    """
    size = utf8_len(body)
    for name, attr in attrs.items():
        size += utf8_len(name)
        data_type = attr.get("DataType")
        if isinstance(data_type, str):
            size += utf8_len(data_type)
        value = attr.get("BinaryValue")
        if value is not None and isinstance(value, bytes | bytearray | memoryview):
            size += len(value)
        text = attr.get("StringValue")
        if isinstance(text, str):
            size += utf8_len(text)
    return size


_BATCH_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,80}")


def validate_batch_entries(entries: Sequence[Mapping[str, object]], *, action: str = "SendMessage") -> None:
    """Check a batch request's entries: 1..10 of them, each with a well-formed Id, Ids distinct.

    `action` (SendMessage, DeleteMessage, ChangeMessageVisibility) names the entry type in messages, as AWS
    does. Entry contents are the per-entry checks' business: a bad body fails only its own entry.
    """
    entry_type = f"{action}BatchRequestEntry"
    if not entries:
        raise SqsError("EmptyBatchRequest", f"There should be at least one {entry_type} in the request.")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise SqsError(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(entries)}.",
        )
    ids: list[Any] = [entry.get("Id") for entry in entries]
    try:
        joined = "".join(ids)  # a missing or non-text Id: TypeError, the long way
    except TypeError:
        pass
    else:
        # The usual batch: every Id a short ASCII alphanumeric string, all distinct; checked all at once.
        lengths = list(map(len, ids))
        if (
            joined.isascii()
            and joined.isalnum()
            and min(lengths) > 0
            and max(lengths) <= 80
            and len(set(ids)) == len(ids)
        ):
            return
    for index, entry in enumerate(entries, start=1):
        entry_id = entry.get("Id")
        if entry_id is None:
            raise missing_parameter(f"{entry_type}.{index}.Id")
        if not isinstance(entry_id, str) or _BATCH_ID.fullmatch(entry_id) is None:
            raise SqsError(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long.",
            )
    seen: set[object] = set()
    for entry in entries:
        entry_id = entry["Id"]
        if entry_id in seen:
            raise SqsError("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.")
        seen.add(entry_id)


_FIFO_ID: Final = re.compile(r"[!-~]{1,128}")


def _validate_fifo_id(parameter: str, value: str) -> None:
    if not isinstance(value, str) or _FIFO_ID.fullmatch(value) is None:
        raise invalid_parameter(
            f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include "
            "alphanumeric and punctuation characters. 1 to 128 in length."
        )


def validate_dedup_id(value: str) -> None:
    """MessageDeduplicationId: 1..128 printable ASCII characters (`!` to `~`)."""
    _validate_fifo_id("MessageDeduplicationId", value)


def validate_group_id(value: str) -> None:
    """MessageGroupId: 1..128 printable ASCII characters (`!` to `~`)."""
    _validate_fifo_id("MessageGroupId", value)


# AWS words the range differently per parameter; these are the texts it (and moto) return.
_INT_PARAM_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "MaxNumberOfMessages": "Must be between {low} and {high}, if provided.",
        "WaitTimeSeconds": "Must be >= {low} and <= {high}, if provided.",
        "DelaySeconds": "DelaySeconds must be >= {low} and <= {high}.",
    }
)
_DEFAULT_INT_REASON: Final = "Must be between {low} and {high}, if provided."


def validate_int_param(name: str, value: object, low: int, high: int) -> int:
    """An integer request parameter (DelaySeconds, VisibilityTimeout, WaitTimeSeconds, MaxNumberOfMessages).

    Accepts an int or the decimal text the query protocol carries; refuses booleans, fractions and values
    outside low..high with AWS's InvalidParameterValue text, e.g. "Value 11 for parameter
    MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INT_TEXT.fullmatch(value.strip())
    ):
        number = int(value)
    if number is None:
        raise invalid_parameter(
            f"Value {value} for parameter {name} is invalid. Reason: {name} must be an integer from {low} to {high}."
        )
    if not low <= number <= high:
        reason = _INT_PARAM_REASONS.get(name, _DEFAULT_INT_REASON).format(low=low, high=high)
        raise invalid_parameter(f"Value {number} for parameter {name} is invalid. Reason: {reason}")
    return number


def content_dedup_id(body: str) -> str:
    """The id ContentBasedDeduplication derives: hex SHA-256 of the UTF-8 body (attributes not included)."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
