"""The AsyncAPI 3.1 document: required structure, resolvable references, and the CLI command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from scte.bus.asyncapi import asyncapi_document, load_topology
from scte.bus.contracts import Event, EventRegistry
from scte.bus.topology import REDRIVE_MARGIN, QueueSpec, Subscription, TopicSpec, Topology
from scte.cli import app
from scte.platform import BROKER_PORT, SERVICES, TOPICS, available_services, topology

REPO = Path(__file__).resolve().parents[3]
VALIDATOR = Path(__file__).with_name("validate_asyncapi.cjs")

reg = EventRegistry()


class Address(BaseModel):
    city: str


@reg.register
class MemberRegistered(Event):
    """A member signed up."""

    event_type: ClassVar[str] = "member.registered.v1"
    member_id: str
    address: Address


@reg.register
class CertificationAwarded(Event):
    event_type: ClassVar[str] = "certification.awarded.v1"
    member_id: str


@reg.register
class ReportReady(Event):
    event_type: ClassVar[str] = "report.ready.v1"
    report: str


TOPOLOGY = Topology(
    topics=(
        TopicSpec("members", events=("member.registered.v1",)),
        TopicSpec("certification", fifo=True),
    ),
    queues=(
        QueueSpec(
            "companies",
            fifo=True,
            subscriptions=(Subscription("certification", event_types=("certification.awarded.v1",)),),
        ),
        QueueSpec("search", subscriptions=(Subscription("members"),), max_receive_count=3),
    ),
)

_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")


def check_asyncapi_3(doc: dict[str, Any]) -> None:
    """The structural rules of AsyncAPI 3.x that a document must follow to be well-formed."""
    assert doc["asyncapi"] == "3.1.0"
    assert isinstance(doc["info"]["title"], str) and doc["info"]["title"]
    assert isinstance(doc["info"]["version"], str) and doc["info"]["version"]
    allowed_root = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations", "components"}
    assert set(doc) <= allowed_root
    for channel_id, channel in doc.get("channels", {}).items():
        assert _KEY.match(channel_id), channel_id
        assert set(channel) <= {
            "address",
            "messages",
            "title",
            "summary",
            "description",
            "servers",
            "parameters",
            "tags",
            "externalDocs",
            "bindings",
        }
        assert channel["address"] is None or isinstance(channel["address"], str)
        for message_id in channel.get("messages", {}):
            assert _KEY.match(message_id)
    for operation_id, operation in doc.get("operations", {}).items():
        assert _KEY.match(operation_id)
        assert operation["action"] in ("send", "receive")
        assert set(operation["channel"]) == {"$ref"}
        channel_ref = operation["channel"]["$ref"]
        for message in operation.get("messages", []):
            assert message["$ref"].startswith(channel_ref + "/messages/"), "operation messages must be the channel's"
    components = doc.get("components", {})
    for section, values in components.items():
        assert section in {
            "schemas",
            "servers",
            "channels",
            "operations",
            "messages",
            "securitySchemes",
            "serverVariables",
            "parameters",
            "correlationIds",
            "replies",
            "replyAddresses",
            "externalDocs",
            "tags",
            "operationTraits",
            "messageTraits",
            "serverBindings",
            "channelBindings",
            "operationBindings",
            "messageBindings",
        }
        for key in values:
            assert _KEY.match(key), key
    for message in components.get("messages", {}).values():
        assert "payload" in message
    for correlation in components.get("correlationIds", {}).values():
        assert correlation["location"].startswith("$message.")
    for ref in _refs(doc):
        assert ref.startswith("#/"), ref
        _resolve(doc, ref)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def test_document_structure() -> None:
    doc = asyncapi_document(TOPOLOGY, reg, title="Test", version="2.0.0")
    check_asyncapi_3(doc)
    assert set(doc["channels"]) == {
        "topic.members",
        "topic.certification",
        "queue.companies",
        "queue.companies-dlq",
        "queue.search",
        "queue.search-dlq",
    }
    assert doc["operations"]["publish.members"]["action"] == "send"
    assert doc["operations"]["receive.search"]["action"] == "receive"
    assert list(doc["channels"]["queue.search"]["messages"]) == ["member.registered.v1"]
    assert list(doc["channels"]["topic.certification"]["messages"]) == ["certification.awarded.v1"]
    sqs = doc["channels"]["queue.search"]["bindings"]["sqs"]["queue"]
    assert sqs["redrivePolicy"] == {"deadLetterQueue": {"name": "search-dlq"}, "maxReceiveCount": 3 + REDRIVE_MARGIN}
    assert doc["channels"]["topic.certification"]["bindings"]["sns"]["ordering"]["type"] == "FIFO"


def test_messages_carry_the_registry_schemas() -> None:
    doc = asyncapi_document(TOPOLOGY, reg)
    messages = doc["components"]["messages"]
    assert set(messages) == {"member.registered.v1", "certification.awarded.v1", "report.ready.v1"}  # whole catalogue
    member = messages["member.registered.v1"]
    assert member["summary"] == "A member signed up."
    assert member["contentType"] == "application/json"
    schema = _resolve(doc, member["payload"]["$ref"])
    assert schema["required"] == ["member_id", "address"]
    assert _resolve(doc, schema["properties"]["address"]["$ref"])["properties"]["city"]["type"] == "string"
    headers = _resolve(doc, member["headers"]["$ref"])
    assert "ce-id" in headers["required"] and "traceparent" in headers["properties"]


def test_empty_topology_is_still_a_document() -> None:
    doc = asyncapi_document(Topology(), EventRegistry())
    check_asyncapi_3(doc)
    assert doc["channels"] == {} and doc["operations"] == {}


def test_load_topology(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_topology.py").write_text(
        textwrap.dedent(
            """
            from scte.bus.topology import Topology, TopicSpec
            TOPOLOGY = Topology(topics=(TopicSpec("x"),))
            def build():
                return TOPOLOGY
            NOT_ONE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_topology("my_topology:TOPOLOGY").topic("x")
    assert load_topology("my_topology:build").topic("x")
    assert load_topology("my_topology.TOPOLOGY").topic("x")
    with pytest.raises(TypeError):
        load_topology("my_topology:NOT_ONE")


def test_cli_prints_and_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_topology.py").write_text(
        textwrap.dedent(
            """
            from typing import ClassVar
            from scte.bus.contracts import Event, EventRegistry
            from scte.bus.topology import QueueSpec, Subscription, Topology, TopicSpec
            REGISTRY = EventRegistry()
            @REGISTRY.register
            class Thing(Event):
                event_type: ClassVar[str] = "thing.happened.v1"
                n: int
            TOPOLOGY = Topology(
                topics=(TopicSpec("things", events=("thing.happened.v1",)),),
                queues=(QueueSpec("watchers", subscriptions=(Subscription("things"),)),),
            )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    runner = CliRunner()
    args = ["contracts", "asyncapi", "--topology", "cli_topology:TOPOLOGY", "--registry", "cli_topology:REGISTRY"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    check_asyncapi_3(doc)
    assert list(doc["components"]["messages"]) == ["thing.happened.v1"]
    assert "queue.watchers" in doc["channels"]

    out = tmp_path / "asyncapi.json"
    result = runner.invoke(app, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == doc

    result = runner.invoke(app, ["contracts", "asyncapi", "--topology", "cli_topology:REGISTRY"])
    assert result.exit_code != 0


def test_cli_default_is_the_whole_platform() -> None:
    """With no option the document describes every topic, every service's queue and its dead letters
    (it had 0 channels unless given `--topology scte.platform:topology`), on the embedded broker and AWS."""
    result = CliRunner().invoke(app, ["contracts", "asyncapi"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    check_asyncapi_3(doc)
    platform = topology()
    expected = {f"topic.{t.name}" for t in TOPICS}
    expected |= {f"queue.{q.name}" for q in platform.queues} | {f"queue.{q.dead_letter_queue}" for q in platform.queues}
    assert set(doc["channels"]) == expected
    assert {f"queue.{name}" for name in available_services()} <= set(doc["channels"])
    assert len(platform.queues) == len(SERVICES)
    assert set(doc["operations"]) == {f"publish.{t.name}" for t in TOPICS} | {
        f"receive.{q.name}" for q in platform.queues
    }
    # every topic carries its contract module's events, and every registered event has its message
    assert all(doc["channels"][f"topic.{t.name}"]["messages"] for t in TOPICS)
    assert set(doc["components"]["messages"]) >= {e for t in TOPICS for e in t.events}
    servers = doc["servers"]
    assert {s["protocol"] for s in servers.values()} == {"sns", "sqs"}
    assert servers["embedded-sqs"]["host"] == f"127.0.0.1:{BROKER_PORT}"
    assert servers["aws-sqs"]["host"] == "sqs.{region}.amazonaws.com"
    assert servers["aws-sqs"]["variables"]["region"]["default"] == "us-east-1"
    assert doc["channels"]["topic.members"]["servers"] == [
        {"$ref": "#/servers/embedded-sns"},
        {"$ref": "#/servers/aws-sns"},
    ]
    assert doc["channels"]["queue.search-dlq"]["servers"] == [
        {"$ref": "#/servers/embedded-sqs"},
        {"$ref": "#/servers/aws-sqs"},
    ]


def _asyncapi_parser(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The AsyncAPI initiative's parser (`@asyncapi/parser`, npm devDependency) run on `document`."""
    node = shutil.which("node")
    assert node is not None, "node is needed (make install: npm ci)"
    assert (REPO / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make install` (npm ci)"
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return subprocess.run(
        [node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )


def test_the_asyncapi_parser_accepts_the_platform_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["contracts", "asyncapi"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    parsed = _asyncapi_parser(doc, tmp_path)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    lines = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert not [d for d in lines if d.get("severity") in (0, 1)], lines  # no error, no warning
    summary = lines[-1]
    assert summary == {
        "valid": True,
        "channels": len(doc["channels"]),
        "operations": len(doc["operations"]),
        "servers": 4,
        "messages": len(doc["components"]["messages"]),
    }


def test_the_asyncapi_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """The parser run really judges: an operation on a channel the document lacks is an error."""
    doc = asyncapi_document(TOPOLOGY, reg)
    doc["operations"]["publish.members"]["channel"] = {"$ref": "#/channels/topic.nowhere"}
    parsed = _asyncapi_parser(doc, tmp_path)
    assert parsed.returncode == 1, parsed.stdout + parsed.stderr
    assert any(json.loads(line).get("severity") == 0 for line in parsed.stdout.splitlines() if line.startswith("{"))
