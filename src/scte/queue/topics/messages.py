"""Validation of what a publish carries: the message, subject, message attributes, structure and FIFO ids,
turned into a `Publication` before the store is touched."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from scte.ids import new_uuid4
from scte.queue import validation
from scte.queue.attribute_shapes import sns_string_attributes
from scte.queue.topics.errors import invalid
from scte.queue.topics.limits import ATTRIBUTE_NAME, FIFO_ID, MAX_MESSAGE_BYTES
from scte.queue.topics.records import Publication

# Attribute names that passed (bounded): a publisher sends the same few with every message.
_GOOD_NAMES: set[str] = set()
_GOOD_LIMIT = 4096


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name) or ".." in name:
        raise invalid(f"Invalid parameter: MessageAttributes Reason: invalid attribute name [{name}]")
    if name.startswith(".") or name.endswith("."):
        raise invalid(f"Invalid parameter: MessageAttributes Reason: invalid attribute name [{name}]")
    if type(name) is str and len(_GOOD_NAMES) < _GOOD_LIMIT:
        _GOOD_NAMES.add(name)


def message_attributes(attrs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
    """Validate SNS message attributes (SQS shape: DataType and StringValue | BinaryValue)."""
    if not attrs:
        return None
    out: dict[str, dict[str, Any]] = {}
    for name, attr in attrs.items():
        if not (type(name) is str and name in _GOOD_NAMES):
            _check_name(name)
        if type(attr) is not dict and not isinstance(attr, Mapping):
            raise invalid(f"Invalid parameter: MessageAttributes Reason: attribute [{name}] must be a structure")
        data_type = attr.get("DataType")
        if not data_type or not isinstance(data_type, str):
            raise invalid(f"The message attribute '{name}' must contain non-empty message attribute type.")
        base = data_type.partition(".")[0]
        if base not in ("String", "Number", "Binary"):
            raise invalid(
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported "
                "type prefixes is Binary, Number, and String."
            )
        if base == "Binary":
            value = attr.get("BinaryValue")
            if isinstance(value, str):
                try:
                    value = base64.b64decode(value, validate=True)
                except ValueError:
                    raise invalid(f"The message attribute '{name}' has an invalid binary value.") from None
            if not isinstance(value, bytes | bytearray | memoryview) or not bytes(value):
                raise invalid(
                    f"The message attribute '{name}' must contain non-empty message attribute value "
                    f"for message attribute type '{data_type}'."
                )
            out[name] = {"DataType": data_type, "BinaryValue": bytes(value)}
            continue
        text = attr.get("StringValue")
        if not isinstance(text, str) or text == "":
            raise invalid(
                f"The message attribute '{name}' must contain non-empty message attribute value "
                f"for message attribute type '{data_type}'."
            )
        if base == "Number":
            try:
                float(text)
            except ValueError:
                raise invalid(
                    "An error occurred (ParameterValueInvalid) when calling the Publish operation: "
                    f"Could not cast message attribute '{name}' value to number."
                ) from None
        out[name] = {"DataType": data_type, "StringValue": text}
    return out


def payload_size(message: str, attrs: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes counted against the 256 KiB limit: the message and the attributes `message_attributes`
    made, counted as SQS counts a message's (name, data type and value of each)."""
    return validation.message_size(message, attrs or {})


def publication(
    message: object,
    subject: object,
    attributes: Mapping[str, Mapping[str, Any]] | None,
    structure: object,
    group_id: object,
    dedup_id: object,
    *,
    now: float,
    entry_id: str | None = None,
) -> Publication:
    """One publish request validated (everything but what depends on the topic), with its MessageId."""
    if message is None:
        raise invalid("Invalid parameter: Message")
    if not isinstance(message, str):
        raise invalid("Invalid parameter: Message Reason: must be a string")
    if message == "":
        raise invalid("Invalid parameter: Empty message")
    if subject is not None:
        if not isinstance(subject, str) or len(subject) >= 100:
            raise invalid("Subject must be less than 100 characters")
        if not subject or any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in subject):
            raise invalid("Invalid parameter: Subject")
    shaped = sns_string_attributes(attributes, _GOOD_NAMES) if attributes else None  # the usual attributes
    strings = None
    if shaped is None:
        attrs = message_attributes(attributes)
        size = payload_size(message, attrs)
    else:
        attrs, size, strings = shaped
        size += validation.utf8_len(message)
    if size > MAX_MESSAGE_BYTES:
        raise invalid("Invalid parameter: Message too long")
    parsed: dict[str, str] | None = None
    if structure is not None:
        if structure != "json":
            raise invalid("MessageStructure must be 'json' if provided")
        try:
            document = json.loads(message)
        except ValueError:
            raise invalid("Message is not valid JSON.") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise invalid("Message is not valid JSON.")
        parsed = document
    for parameter, value in (("MessageGroupId", group_id), ("MessageDeduplicationId", dedup_id)):
        if value is not None and (not isinstance(value, str) or not FIFO_ID.fullmatch(value)):
            raise invalid(
                f"Invalid parameter: {parameter} Reason: must be 1 to 128 characters from "
                "alphanumeric and punctuation characters"
            )
    return Publication(
        message_id=new_uuid4(),
        message=message,
        subject=subject if isinstance(subject, str) else None,
        attributes=attrs,
        structure=parsed,
        group_id=group_id if isinstance(group_id, str) else None,
        dedup_id=dedup_id if isinstance(dedup_id, str) else None,
        published_at=now,
        entry_id=entry_id,
        strings=strings,
    )
