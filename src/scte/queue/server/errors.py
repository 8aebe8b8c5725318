"""Error responses in each protocol's wire format.

JSON protocol (awsJson1_0, `awsQueryCompatible`): HTTP 400, body
`{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "..."}` and the header
`x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender`, from which boto3 reports the
query code as `Error.Code`.

Query protocol: `<ErrorResponse><Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>
<Message>...</Message><Detail/></Error><RequestId>...</RequestId></ErrorResponse>`.
"""

from __future__ import annotations

import orjson

from scte.queue.errors import SqsError
from scte.queue.server.xml import XML_NAMESPACE, escape

JSON_CONTENT_TYPE = b"application/x-amz-json-1.0"
XML_CONTENT_TYPE = b"text/xml"

# HTTP status of errors that AWS does not answer with 400 (the engine leaves status to the wire layer).
_STATUS = {"OverLimit": 403, "ResourceNotFoundException": 404}

# The JSON protocol's `__type` of errors that are no shape of the botocore model: AWS's own names for them
# (the model's shapes, QueueDoesNotExist and the rest, are `com.amazonaws.sqs#<shape>`). boto3 reads the
# query code from `x-amzn-query-error` either way; other SDKs read `__type`.
_JSON_TYPES = {
    "InvalidParameterValue": "com.amazonaws.sqs#InvalidParameterValueException",
    "MissingParameter": "com.amazonaws.sqs#MissingRequiredParameterException",
    "AccessDenied": "com.amazonaws.sqs#AccessDeniedException",
    "MessageAttributesInvalid": "com.amazonaws.sqs#InvalidParameterValueException",
}
# The query protocol's text for a missing queue (the JSON protocol's is the shorter one, as botocore's
# SQS model since JSON says and AWS answers).
_NO_QUEUE = "The specified queue does not exist."
_NO_QUEUE_QUERY = "The specified queue does not exist for this wsdl version."

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]


class WireError(SqsError):
    """An error of the protocol layer rather than of SQS: its JSON `__type` may name another namespace."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, sender: bool = True, json_type: str | None = None
    ) -> None:
        super().__init__(code, message, status=status, sender=sender)
        self.json_type = json_type


def unknown_operation(action: str) -> WireError:
    return WireError(
        "InvalidAction",
        f"The action {action} is not valid for this endpoint.",
        json_type="com.amazon.coral.service#UnknownOperationException",
    )


def unknown_operation_404() -> WireError:
    """A request that names no operation (a bare GET): AWS's 404."""
    return WireError(
        "UnknownOperationException",
        "The requested operation is not supported by this endpoint.",
        status=404,
        json_type="com.amazon.coral.service#UnknownOperationException",
    )


def serialization_error(message: str) -> WireError:
    """A JSON request whose member has the wrong type (what AWS's JSON deserializer answers)."""
    return WireError("SerializationException", message, json_type="com.amazon.coral.service#SerializationException")


def request_too_large(limit: int) -> WireError:
    return WireError(
        "RequestEntityTooLarge",
        f"The request body is larger than {limit} bytes.",
        status=413,
        json_type="com.amazon.coral.service#RequestEntityTooLargeException",
    )


def request_timeout() -> WireError:
    return WireError(
        "RequestTimeout",
        "The request body did not arrive in time.",
        status=408,
        json_type="com.amazon.coral.service#RequestTimeoutException",
    )


def unsupported_media_type(content_type: str) -> WireError:
    return WireError(
        "UnsupportedMediaType",
        f"Content-Type {content_type!r} is not supported; the JSON protocol takes application/x-amz-json-1.0.",
        status=415,
        json_type="com.amazon.coral.service#UnsupportedMediaTypeException",
    )


def malformed_query(message: str) -> WireError:
    return WireError("MalformedQueryString", message, json_type="com.amazon.coral.service#SerializationException")


def internal_error() -> WireError:
    return WireError(
        "InternalError",
        "We encountered an internal error. Please try again.",
        status=500,
        sender=False,
        json_type="com.amazonaws.sqs#InternalError",
    )


def service_unavailable() -> WireError:
    return WireError(
        "ServiceUnavailable",
        "The broker is shutting down; retry the request.",
        status=503,
        sender=False,
        json_type="com.amazonaws.sqs#ServiceUnavailable",
    )


def json_error(error: SqsError, request_id: str) -> Response:
    json_type = getattr(error, "json_type", None) or _JSON_TYPES.get(error.code) or f"com.amazonaws.sqs#{error.code}"
    body = orjson.dumps({"__type": json_type, "message": error.message})
    fault = "Sender" if error.sender else "Receiver"
    headers: Headers = [
        (b"content-type", JSON_CONTENT_TYPE),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-query-error", f"{error.query_code};{fault}".encode()),
    ]
    return _status(error), headers, body


def _status(error: SqsError) -> int:
    return _STATUS.get(error.code, error.status) if error.status == 400 else error.status


def xml_error(error: SqsError, request_id: str) -> Response:
    fault = "Sender" if error.sender else "Receiver"
    message = _NO_QUEUE_QUERY if error.message == _NO_QUEUE and error.code == "QueueDoesNotExist" else error.message
    body = (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>{fault}</Type>'
        f"<Code>{escape(error.query_code)}</Code><Message>{escape(message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    headers: Headers = [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return _status(error), headers, body
