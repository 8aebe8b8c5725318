"""The AsyncAPI 3.1 document of a topology: channels (topics and queues), operations, messages.

Topics are channels the platform sends to; queues (and their dead-letter queues) are channels
services receive from. Each message is an event type, its payload the JSON Schema Pydantic gives
its model, its headers the envelope's message attributes. The servers are where the same channels
live: the embedded broker `scte up` starts (`scte queue serve`, SNS and SQS on one port) and AWS.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from scte.bus.contracts import EventRegistry
from scte.bus.envelope import (
    CAUSATION_ID,
    CORRELATION_ID,
    DEFAULT_CONTENT_TYPE,
    ID,
    SOURCE,
    SPECVERSION,
    SUBJECT,
    TIME,
    TRACEPARENT,
    TRACESTATE,
    TYPE,
)
from scte.bus.topology import QueueSpec, TopicSpec, Topology

__all__ = [
    "ASYNCAPI_VERSION",
    "DEFAULT_TOPOLOGY",
    "asyncapi_document",
    "load_object",
    "load_topology",
    "platform_servers",
]

ASYNCAPI_VERSION = "3.1.0"

_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes, correlation and trace context, as SQS/SNS String message attributes.",
    "required": [ID, TYPE, SOURCE, SPECVERSION, TIME, CORRELATION_ID],
    "properties": {
        ID: {"type": "string", "description": "CloudEvents id: unique per event (the inbox key)."},
        TYPE: {"type": "string", "description": "CloudEvents type: the event type, e.g. certification.awarded.v1."},
        SOURCE: {"type": "string", "description": "CloudEvents source: the publishing service."},
        SPECVERSION: {"type": "string", "const": "1.0"},
        TIME: {"type": "string", "format": "date-time"},
        SUBJECT: {"type": "string", "description": "CloudEvents subject: the aggregate (FIFO group, order key)."},
        "ce-datacontenttype": {"type": "string", "description": "Sent only when not application/json."},
        CORRELATION_ID: {"type": "string", "description": "Shared by every message of one conversation."},
        CAUSATION_ID: {"type": "string", "description": "The id of the message that caused this one."},
        TRACEPARENT: {"type": "string", "description": "W3C traceparent (tracestate may follow after a space)."},
        TRACESTATE: {"type": "string", "description": "W3C tracestate."},
    },
}


def platform_servers(broker_host: str = "127.0.0.1:9324") -> dict[str, Any]:
    """The servers of the platform's channels: the embedded broker at `broker_host` (one endpoint
    answers both SNS and SQS) and AWS in a region of the reader's choosing."""
    region = {
        "region": {
            "default": "us-east-1",
            "description": "The AWS region of the install (AWS_REGION / AWS_DEFAULT_REGION).",
            "examples": ["us-east-1", "eu-west-1"],
        }
    }
    embedded = "The embedded broker that `scte up` starts (`scte queue serve`): AWS_ENDPOINT_URL of the services."
    return {
        "embedded-sns": {
            "host": broker_host,
            "protocol": "sns",
            "title": "Embedded broker (SNS)",
            "description": embedded + " SigV4-signed, each service with its own key.",
        },
        "embedded-sqs": {
            "host": broker_host,
            "protocol": "sqs",
            "title": "Embedded broker (SQS)",
            "description": embedded + " SigV4-signed, each service with its own key.",
        },
        "aws-sns": {
            "host": "sns.{region}.amazonaws.com",
            "protocol": "sns",
            "title": "Amazon SNS",
            "description": "The same topics on AWS (SCTE_TRANSPORT=aws without AWS_ENDPOINT_URL).",
            "variables": region,
        },
        "aws-sqs": {
            "host": "sqs.{region}.amazonaws.com",
            "protocol": "sqs",
            "title": "Amazon SQS",
            "description": "The same queues on AWS (SCTE_TRANSPORT=aws without AWS_ENDPOINT_URL).",
            "variables": region,
        },
    }


def _servers_of(servers: dict[str, Any], protocol: str) -> list[dict[str, str]]:
    return [{"$ref": f"#/servers/{name}"} for name, server in servers.items() if server.get("protocol") == protocol]


def _topic_events(topology: Topology, topic: TopicSpec) -> list[str]:
    """The event types a topic carries: as declared (`TopicSpec.events`), else those its subscribers
    filter on (a partial list: declare `events` to document the topic fully)."""
    if topic.events:
        return sorted(topic.events)
    return sorted(
        {
            t
            for q in topology.subscribers(topic.name)
            for s in q.subscriptions
            if s.topic == topic.name
            for t in s.event_types
        }
    )


def _queue_events(topology: Topology, queue: QueueSpec) -> list[str]:
    types: set[str] = set()
    for subscription in queue.subscriptions:
        carried = _topic_events(topology, topology.topic(subscription.topic))
        types.update(t for t in carried if subscription.accepts(t) is not False)
    return sorted(types)


def _sqs_binding(queue: QueueSpec, name: str, dead_letter: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "fifoQueue": queue.fifo,
        "visibilityTimeout": queue.visibility_timeout,
        "messageRetentionPeriod": 1_209_600 if dead_letter else queue.retention_seconds,
    }
    if not dead_letter:
        spec["redrivePolicy"] = {
            "deadLetterQueue": {"name": queue.dead_letter_queue},
            "maxReceiveCount": queue.broker_max_receive_count,  # what the broker is given
        }
    return {"sqs": {"queue": spec, "bindingVersion": "0.2.0"}}


def asyncapi_document(
    topology: Topology,
    registry: EventRegistry,
    *,
    title: str = "SCTE Platform events",
    version: str = "1.0.0",
    description: str | None = None,
    servers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.1 document (a JSON-ready dict) of `topology`, with schemas from `registry`.

    `servers` (AsyncAPI server objects by name; default `platform_servers()`): a topic is on every
    `sns` server, a queue on every `sqs` one."""
    servers = platform_servers() if servers is None else servers
    topic_servers = _servers_of(servers, "sns")
    queue_servers = _servers_of(servers, "sqs")
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    used: set[str] = set()

    def message_ref(event_type: str) -> dict[str, str]:
        used.add(event_type)
        return {"$ref": f"#/components/messages/{event_type}"}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topology.topics:
        channel_id = f"topic.{topic.name}"
        events = _topic_events(topology, topic)
        channels[channel_id] = {
            "address": topic.name,
            "title": f"Topic {topic.name}",
            "description": ("FIFO topic: ordered per subject. " if topic.fifo else "")
            + "Fan-out to: "
            + (", ".join(q.name for q in topology.subscribers(topic.name)) or "no queue"),
            "messages": {t: message_ref(t) for t in events},
            **({"servers": topic_servers} if topic_servers else {}),
            "bindings": {
                "sns": {
                    "name": topic.name,
                    "ordering": {"type": "FIFO" if topic.fifo else "standard"},
                    "bindingVersion": "0.1.0",
                }
            },
        }
        operations[f"publish.{topic.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"Publish to {topic.name}",
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{t}"} for t in events],
        }
    for queue in topology.queues:
        channel_id = f"queue.{queue.name}"
        events = _queue_events(topology, queue)
        channels[channel_id] = {
            "address": queue.name,
            "title": f"Queue {queue.name}",
            "description": "Subscribed to: "
            + (", ".join(s.topic for s in queue.subscriptions) or "nothing (commands sent directly)"),
            "messages": {t: message_ref(t) for t in events},
            **({"servers": queue_servers} if queue_servers else {}),
            "bindings": _sqs_binding(queue, queue.name, dead_letter=False),
        }
        operations[f"receive.{queue.name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"Consume {queue.name}",
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{t}"} for t in events],
        }
        dlq_id = f"queue.{queue.dead_letter_queue}"
        channels[dlq_id] = {
            "address": queue.dead_letter_queue,
            "title": f"Dead letters of {queue.name}",
            "description": (
                f"Messages that failed {queue.max_receive_count} times in {queue.name} (sent by the consumer with"
                f" the failure in the `scte-dead-letter` attribute), or that the broker moved after"
                f" {queue.broker_max_receive_count} receives."
            ),
            "messages": {t: message_ref(t) for t in events},
            **({"servers": queue_servers} if queue_servers else {}),
            "bindings": _sqs_binding(queue, queue.dead_letter_queue, dead_letter=True),
        }

    for event_type in sorted(used | set(registry.types())):  # the whole catalogue, used or not
        if event_type in registry:
            cls = registry.resolve(event_type)
            schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas[event_type] = schema
            payload: dict[str, Any] = {"$ref": f"#/components/schemas/{event_type}"}
            summary = (cls.__doc__ or "").strip().split("\n", 1)[0] or event_type
        else:  # filtered on, but no model registered in this process
            payload = {"type": "object"}
            summary = f"{event_type} (no model registered)"
        messages[event_type] = {
            "name": event_type,
            "title": event_type,
            "summary": summary,
            "contentType": DEFAULT_CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/envelope"},
            "payload": payload,
            "correlationId": {"$ref": "#/components/correlationIds/correlation"},
        }
    schemas["envelope"] = _HEADERS

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": description
            or "Events of the SCTE platform over SNS topics and SQS queues (scte.bus). "
            "Bodies are the events' JSON; envelopes are message attributes (docs/bus.md).",
        },
        **({"servers": servers} if servers else {}),
        "defaultContentType": DEFAULT_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "correlationIds": {
                "correlation": {
                    "description": "Shared by every message of one conversation.",
                    "location": f"$message.header#/{CORRELATION_ID}",
                }
            },
        },
    }


DEFAULT_TOPOLOGY = "scte.platform:topology"
"""The platform's topology: its topics and every service's queue (`scte.platform.topology()`)."""


def load_object(path: str) -> Any:
    """`package.module:ATTRIBUTE` (or `package.module.ATTRIBUTE`) imported and returned."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"expected 'package.module:ATTRIBUTE', got {path!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def import_contracts(package: str = "scte.contracts") -> None:
    """Import every module of the contracts package, so their events register themselves."""
    try:
        root = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name and package.startswith(exc.name):
            return
        raise
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        importlib.import_module(info.name)


def load_topology(path: str | None) -> Topology:
    """The topology at `path`; without one, the platform's default if it exists, else an empty one."""
    if path is not None:
        value = load_object(path)
    else:
        try:
            value = load_object(DEFAULT_TOPOLOGY)
        except (ModuleNotFoundError, AttributeError):
            return Topology()
    if callable(value) and not isinstance(value, Topology):
        value = value()
    if not isinstance(value, Topology):
        raise TypeError(f"{path or DEFAULT_TOPOLOGY} is not a Topology but {type(value).__name__}")
    return value
