"""SQS errors: the code AWS uses, a message a person can act on, and the wire details.

The JSON protocol reports `code` as `__type` (`com.amazonaws.sqs#<code>`) and the legacy query code in
the `x-amzn-query-error` header; the query protocol reports the query code in `<Code>`.
"""

from __future__ import annotations

# JSON error shape -> legacy query code, where they differ (from the botocore model's awsQueryError).
QUERY_CODES: dict[str, str] = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "QueueDeletedRecently": "AWS.SimpleQueueService.QueueDeletedRecently",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
    # Not a shape of the model: AWS (and moto) report invalid message attributes as InvalidParameterValue.
    "MessageAttributesInvalid": "InvalidParameterValue",
}


class SqsError(Exception):
    """An SQS API error. Raised by the engine before it changes anything."""

    def __init__(self, code: str, message: str, *, status: int = 400, sender: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender

    @property
    def query_code(self) -> str:
        """The code the query protocol (and boto3's Error.Code) reports."""
        return QUERY_CODES.get(self.code, self.code)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.code, self.message, self.status, self.sender))


def _rebuild(code: str, message: str, status: int, sender: bool) -> SqsError:
    return SqsError(code, message, status=status, sender=sender)


def invalid_parameter(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message)


def missing_parameter(name: str) -> SqsError:
    return SqsError("MissingParameter", f"The request must contain the parameter {name}.")


def queue_does_not_exist(name: str = "") -> SqsError:
    suffix = f" ({name})" if name else ""
    return SqsError("QueueDoesNotExist", f"The specified queue does not exist{suffix}.")
