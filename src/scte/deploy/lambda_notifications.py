"""The notifications service's handlers as an AWS Lambda function: `scte.deploy.lambda_notifications.handler`.

An SQS event source mapping (with `FunctionResponseTypes: [ReportBatchItemFailures]`) calls it with batches of
the notifications queue; `scte.bus.lambda_adapter` runs them through the service's own handlers and inbox
(exactly-once effects, retries with backoff, dead letters with the failure recorded) and answers with the
ids of the records to deliver again. What the handlers do is write the delivery log; sending it (the
dispatcher) is the notifications service process's job.

Its environment:
- `SCTE_NOTIFICATIONS_DATABASE_URL` (required): the service's database, `postgresql+asyncpg://...` on AWS
  (an SQLite file lives as long as one execution environment: local runs only). Migrated on the first
  invocation of an execution environment, as `scte up` migrates it at start.
- `SCTE_QUEUE_PREFIX`: the prefix the stack's names were made with (`scte deploy cloudformation --prefix`).
- `SCTE_BROKER`: unset (or `aws`) on Lambda, AWS itself; the URL of an SQS/SNS endpoint to point the function
  at a local broker (the tests: moto_server).
The AWS credentials and region are Lambda's (the function's execution role).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from scte.bus.consumer import Consumer
from scte.bus.lambda_adapter import LambdaHandler, lambda_handler

__all__ = ["ConfigurationError", "build_consumer", "endpoint_url", "handler"]

SERVICE = "notifications"
MIGRATIONS = "scte.services.notifications"
DATABASE_VARIABLE = "SCTE_NOTIFICATIONS_DATABASE_URL"


class ConfigurationError(RuntimeError):
    """The function's environment lacks what it needs (said in the message, in the function's log)."""


def database_url() -> str:
    url = os.environ.get(DATABASE_VARIABLE, "").strip()
    if not url:
        raise ConfigurationError(
            f"{DATABASE_VARIABLE} is not set: give the function the notifications database "
            "(postgresql+asyncpg://user:password@host:5432/notifications)"
        )
    return url


def endpoint_url() -> str | None:
    """The SQS/SNS endpoint (`SCTE_BROKER`): None for AWS itself, the default."""
    from scte.kit.settings import parse_broker

    try:
        broker = parse_broker(os.environ.get("SCTE_BROKER", "aws"))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if broker == "embedded":
        raise ConfigurationError(
            "SCTE_BROKER=embedded: the function reads an SQS queue; leave SCTE_BROKER unset (AWS) or give an "
            "SQS/SNS endpoint URL"
        )
    return None if broker == "aws" else broker


def build_consumer() -> Consumer:
    """The notifications service's consumer on the AWS transport and its database, built inside the
    adapter's event loop (the transport's clients and the database pool belong to it)."""
    from scte.bus.topology import Topology
    from scte.bus.transports.aws import AwsTransport
    from scte.contracts.members import MemberSessionsRevoked
    from scte.kit.clock import Clock
    from scte.kit.db import create_engine, sessionmaker
    from scte.kit.revocation import on_sessions_revoked, receives_revocations
    from scte.kit.settings import Settings
    from scte.platform import TOPICS
    from scte.services.notifications import handlers
    from scte.services.notifications.service import QUEUE

    settings = Settings()
    topology = Topology(topics=TOPICS, queues=(QUEUE,))
    transport = AwsTransport(settings.queue_prefix, endpoint_url(), topology=topology)
    routes: dict[Any, Any] = dict(handlers.HANDLERS)
    if receives_revocations(QUEUE):  # as the service's runtime does: it keeps the members' session revocations
        routes.setdefault(MemberSessionsRevoked, on_sessions_revoked)
    return Consumer(
        transport,
        topology,
        queue=QUEUE.name,
        handlers=routes,
        sessionmaker=sessionmaker(create_engine(database_url())),
        dependencies={"clock": Clock(settings.clock_offset_seconds, settings.clock_file), "settings": settings},
        name=SERVICE,  # the service process's consumer name: one inbox, whichever of the two handles an event
    )


def _migrate() -> None:
    """The service's migrations, in a loop of their own (before the adapter's loop exists)."""
    from scte.kit.db import upgrade

    asyncio.run(upgrade(MIGRATIONS, database_url()))


_entry: list[LambdaHandler] = []


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """The function's entry point: an SQS event in, `{"batchItemFailures": [...]}` out."""
    if not _entry:
        endpoint_url()  # a wrong SCTE_BROKER fails the first invocation with its reason, before any work
        _migrate()
        _entry.append(lambda_handler(build_consumer))
    return _entry[0](event, context)
