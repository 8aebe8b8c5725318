"""The same handlers as an AWS Lambda function behind an SQS event source mapping.

The event source mapping receives and deletes; the function processes the batch with the consumer's
`handle(..., acknowledge=False)` and answers with the partial batch response (the mapping needs
`FunctionResponseTypes: ["ReportBatchItemFailures"]`): the ids of the records to deliver again. The
inbox, retries with backoff (the function changes the visibility of a failed record itself) and dead
letters with the failure recorded work as in a long-running consumer; a dead-lettered record counts as
a success, so the mapping deletes it.

On a FIFO queue the records of a batch are processed one by one in order; at the first record not
settled, it and every record after it are reported, unprocessed, so order within a group holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scte.bus.consumer import Consumer
from scte.bus.transport import IncomingMessage

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, list[dict[str, str]]]]


def record_to_message(record: Mapping[str, Any], queue: str) -> IncomingMessage:
    """An SQS record of a Lambda event as the message the consumer runtime expects."""
    system = record.get("attributes") or {}
    attributes: dict[str, str] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        text = value.get("stringValue")
        if text is not None:  # Binary attributes carry nothing the envelope uses
            attributes[name] = str(text)
    return IncomingMessage(
        queue=queue,
        message_id=str(record["messageId"]),
        receipt=str(record["receiptHandle"]),
        body=str(record.get("body", "")),
        attributes=attributes,
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_timestamp_ms=int(system.get("SentTimestamp", 0)),
        group_id=system.get("MessageGroupId"),
    )


async def process_records(consumer: Consumer, records: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Process the records of one Lambda event; return the `batchItemFailures` entries."""
    messages = [record_to_message(record, consumer.queue) for record in records]
    if consumer.spec.fifo:
        failures: list[dict[str, str]] = []
        for index, message in enumerate(messages):
            outcome = await consumer.handle(message, acknowledge=False)
            if not outcome.settled:
                failures = [{"itemIdentifier": m.message_id} for m in messages[index:]]
                break
        return failures
    outcomes = await consumer.handle_batch(messages, acknowledge=False)
    return [
        {"itemIdentifier": message.message_id}
        for message, outcome in zip(messages, outcomes, strict=True)
        if not outcome.settled
    ]


def lambda_handler(consumer: Consumer | Callable[[], Consumer]) -> LambdaHandler:
    """A Lambda entry point for `consumer` (or for a factory of it, called on the first invocation so
    that the transport and database pools are built inside the function's event loop).

    The event loop lives as long as the execution environment, so connections are reused across
    invocations, as Lambda intends.
    """
    loop = asyncio.new_event_loop()
    built: list[Consumer] = []

    def get() -> Consumer:
        if not built:
            built.append(consumer if isinstance(consumer, Consumer) else consumer())
        return built[0]

    async def invoke(records: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        return await process_records(get(), records)

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
        failures = loop.run_until_complete(invoke(event.get("Records") or []))
        return {"batchItemFailures": failures}

    return handler
