"""The dead-letter record: why a message was given up, in one attribute of the message as it goes to
the dead-letter queue."""

from __future__ import annotations

import hashlib
import json
import traceback
from datetime import UTC, datetime
from typing import Any

from scte.bus.envelope import DecodeError, SchemaMismatch, UnknownEventType
from scte.bus.transport import IncomingMessage, OutgoingMessage

DEAD_LETTER_ATTRIBUTE = "scte-dead-letter"
"""The message attribute that records why a message was dead-lettered: a JSON object with `reason`,
`error_type`, `error` (at most 1,000 characters), `traceback_digest` (the first 16 hex digits of the
SHA-256 of the formatted traceback, to group identical failures), `consumer`, `queue`, `receive_count`,
`failed_at` and, when the original had no room left in the 10-attribute budget, `folded` (the original
attributes it displaced, restored by a redrive tool)."""

MAX_ATTRIBUTES = 10
MAX_ERROR_CHARS = 1000


def decode_reason(exc: DecodeError) -> str:
    """The dead-letter reason of a message that cannot become an event."""
    if isinstance(exc, UnknownEventType):
        return "unknown-event-type"
    if isinstance(exc, SchemaMismatch):
        return "schema-mismatch"
    return "undecodable"  # UndecodableMessage: attributes missing or invalid, body not a JSON object


def traceback_digest(exc: BaseException) -> str:
    """A short stable digest of a failure's traceback (frames and exception type, not the message)."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = "".join(f"{f.filename}:{f.name}:{f.lineno}\n" for f in frames) + type(exc).__qualname__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dead_letter_message(
    message: IncomingMessage, reason: str, exc: BaseException, *, consumer: str, queue: str, fifo: bool
) -> OutgoingMessage:
    """The message as it goes to the dead-letter queue: body unchanged, the failure in one attribute."""
    record: dict[str, Any] = {
        "reason": reason,
        "error_type": type(exc).__qualname__,
        "error": str(exc)[:MAX_ERROR_CHARS],
        "traceback_digest": traceback_digest(exc),
        "consumer": consumer,
        "queue": queue,
        "receive_count": message.receive_count,
        "failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    attributes = {k: v for k, v in message.attributes.items() if k != DEAD_LETTER_ATTRIBUTE}
    if len(attributes) >= MAX_ATTRIBUTES:
        names = list(attributes)
        record["folded"] = {name: attributes.pop(name) for name in names[MAX_ATTRIBUTES - 1 :]}
    attributes[DEAD_LETTER_ATTRIBUTE] = json.dumps(record, separators=(",", ":"))
    return OutgoingMessage(
        body=message.body,
        attributes=attributes,
        group_id=(message.group_id or "dead-letters") if fifo else None,
        deduplication_id=message.message_id if fifo else None,
    )
