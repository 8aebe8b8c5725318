"""SNS errors of the topics API: `SnsError` (codes and messages as SNS has them) and their builders."""

from __future__ import annotations

from typing import Any

from scte.queue.errors import SqsError
from scte.queue.filter_policy import SnsError, invalid

__all__ = ["SnsError", "batch_failure", "invalid", "not_found", "resource_not_found"]

TOPIC_NOT_FOUND = "Topic does not exist"


def not_found(message: str = TOPIC_NOT_FOUND) -> SnsError:
    return SnsError("NotFound", message, status=404)


def resource_not_found() -> SnsError:
    return SnsError("ResourceNotFound", "Resource does not exist", status=404)


def batch_failure(entry_id: str, exc: SqsError) -> dict[str, Any]:
    """A PublishBatch `Failed` entry."""
    return {"Id": entry_id, "Code": exc.code, "Message": exc.message, "SenderFault": exc.sender}
