"""`scte queues` and `scte dlq ...` against a real broker (`scte queue serve --auth strict`, on loopback)
with the operator's key in a 0600 file, as an install keeps it: each command's output and effect, and
each bad argument's clear refusal (exit 2 for usage, 1 when the broker refuses or is not there)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.integration.server.server_harness import Server, start_server
from typer.testing import CliRunner

from scte.bus.consumer import DEAD_LETTER_ATTRIBUTE
from scte.bus.envelope import encode
from scte.bus.transports._provision import queue_policy
from scte.cli import app
from scte.contracts.members import MemberRegistered

KEY, SECRET = "AKIDOPERATOR1", "operator-secret-" + "x" * 24


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("cli-broker"), "--auth", "strict", "--access-key", f"{KEY}:{SECRET}")
    yield server
    server.stop()


@pytest.fixture
def install(broker: Server, tmp_path: Path) -> Path:
    """A data directory as `scte up` leaves it: the running broker in run/processes.json, the admin key."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "processes.json").write_text(json.dumps({"env": {"AWS_ENDPOINT_URL": broker.endpoint}}))
    keys = tmp_path / "keys" / "broker"
    keys.mkdir(parents=True)
    key = keys / "admin.json"
    key.write_text(json.dumps({"aws_access_key_id": KEY, "aws_secret_access_key": SECRET}))
    key.chmod(0o600)
    return tmp_path


def _client(broker: Server, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=broker.endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )


@pytest.fixture
def queues(broker: Server) -> dict[str, str]:
    """A fresh source queue and its DLQ (RedrivePolicy); names and URLs."""
    sqs = _client(broker, "sqs")
    tag = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"cli{tag}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName=f"cli{tag}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    return {"source": source, "dlq": dlq, "source_name": f"cli{tag}", "dlq_name": f"cli{tag}-dlq"}


def dead_letter(broker: Server, queue_url: str, email: str = "ada@example.com") -> tuple[str, str]:
    event = MemberRegistered(
        member_id=uuid.uuid4().hex, email=email, display_name="Ada", registered_at=datetime.now(UTC)
    )
    envelope, message = encode(event, source="members")
    failure = {"reason": "handler-error", "error_type": "RuntimeError", "error": "boom <b>", "receive_count": 5}
    attributes = {**message.attributes, DEAD_LETTER_ATTRIBUTE: json.dumps(failure)}
    sent = _client(broker, "sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=message.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    return str(sent["MessageId"]), envelope.id


def scte(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _count(broker: Server, url: str) -> int:
    attrs = _client(broker, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_scte_queues_shows_every_queue(broker: Server, install: Path, queues: dict[str, str]) -> None:
    _client(broker, "sqs").send_message(QueueUrl=queues["source"], MessageBody="x")
    out = scte("queues", "--data", str(install), "--json")
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert rows[queues["source_name"]]["waiting"] == 1
    assert rows[queues["source_name"]]["dead_letter_queue"] == queues["dlq_name"]
    assert rows[queues["dlq_name"]]["waiting"] == 0
    table = scte("queues", "--data", str(install))
    assert table.exit_code == 0 and queues["source_name"] in table.output and "oldest" in table.output
    assert SECRET not in table.output
    assert scte("queues", "--data", str(install), "ls").exit_code == 0


def test_scte_dlq_list_shows_only_dead_letter_queues(broker: Server, install: Path, queues: dict[str, str]) -> None:
    dead_letter(broker, queues["dlq"])
    out = scte("dlq", "list", "--data", str(install), "--json")
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert rows[queues["dlq_name"]]["waiting"] == 1 and queues["source_name"] not in rows
    assert scte("dlq", "ls", "--data", str(install)).exit_code == 0


def test_scte_dlq_show_decodes_envelope_and_failure(broker: Server, install: Path, queues: dict[str, str]) -> None:
    message_id, _ = dead_letter(broker, queues["dlq"])
    out = scte("dlq", "show", queues["dlq_name"], "--data", str(install))
    assert out.exit_code == 0, out.output
    assert message_id in out.output and "member.registered.v1" in out.output
    assert "handler-error" in out.output and "RuntimeError: boom <b>" in out.output
    [letter] = json.loads(scte("dlq", "show", queues["dlq_name"], "--data", str(install), "--json").output)
    assert letter["message_id"] == message_id and letter["attempts"] == "5" and letter["source"] == "members"
    assert _count(broker, queues["dlq"]) == 1  # looked at, left in place


def test_scte_dlq_redrive_moves_named_messages_or_all(broker: Server, install: Path, queues: dict[str, str]) -> None:
    first, _ = dead_letter(broker, queues["dlq"])
    dead_letter(broker, queues["dlq"])
    out = scte("dlq", "redrive", queues["dlq_name"], first, "--data", str(install))
    assert out.exit_code == 0 and "1 of 1 message moved back" in out.output
    assert _count(broker, queues["source"]) == 1
    moved = _client(broker, "sqs").receive_message(
        QueueUrl=queues["source"], MessageAttributeNames=["All"], MaxNumberOfMessages=1
    )["Messages"][0]
    assert DEAD_LETTER_ATTRIBUTE not in moved["MessageAttributes"]  # the failure record removed
    everything = scte("dlq", "redrive", queues["dlq_name"], "--all", "--data", str(install))
    assert everything.exit_code == 0 and "move task" in everything.output
    missing = scte("dlq", "redrive", queues["dlq_name"], "no-such-id", "--data", str(install))
    assert missing.exit_code == 1 and "0 of 1" in missing.output


def test_scte_dlq_replay_publishes_to_the_topic(broker: Server, install: Path, queues: dict[str, str]) -> None:
    sns, sqs = _client(broker, "sns"), _client(broker, "sqs")
    topic = sns.create_topic(Name="members")["TopicArn"]
    arn = sqs.get_queue_attributes(QueueUrl=queues["source"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queues["source"], Attributes={"Policy": queue_policy(arn, [topic])})
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    try:
        message_id, event_id = dead_letter(broker, queues["dlq"])
        refused = CliRunner().invoke(
            app, ["dlq", "replay", queues["dlq_name"], message_id, "--data", str(install)], input="n\n"
        )
        assert refused.exit_code == 1 and "not replayed" in refused.output
        out = scte("dlq", "replay", queues["dlq_name"], message_id, "--yes", "--data", str(install))
        assert out.exit_code == 0 and "published again to members" in out.output, out.output
        got = sqs.receive_message(QueueUrl=queues["source"], MessageAttributeNames=["All"], WaitTimeSeconds=5)
        attrs = got["Messages"][0]["MessageAttributes"]
        assert attrs["ce-id"]["StringValue"] == event_id and DEAD_LETTER_ATTRIBUTE not in attrs
        assert _count(broker, queues["dlq"]) == 0
    finally:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def test_scte_dlq_purge_asks_first(broker: Server, install: Path, queues: dict[str, str]) -> None:
    dead_letter(broker, queues["dlq"])
    refused = CliRunner().invoke(app, ["dlq", "purge", queues["dlq_name"], "--data", str(install)], input="n\n")
    assert refused.exit_code == 1 and "not purged" in refused.output
    assert _count(broker, queues["dlq"]) == 1
    confirmed = CliRunner().invoke(app, ["dlq", "purge", queues["dlq_name"], "--data", str(install)], input="y\n")
    assert confirmed.exit_code == 0 and "purged" in confirmed.output
    assert _count(broker, queues["dlq"]) == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["dlq", "show", "search"], 2, "not a dead-letter queue"),
        (["dlq", "show", "bad name!"], 2, "is not a queue name"),
        (["dlq", "show", "nothing-here-dlq"], 1, "no such queue"),
        (["dlq", "purge", "search", "--yes"], 2, "not a dead-letter queue"),
        (["dlq", "redrive", "x-dlq"], 2, "name the messages to redrive, or give --all"),
        (["dlq", "redrive", "x-dlq", "an id", "--all"], 2, "not a message id"),
        (["dlq", "show", "x-dlq", "--limit", "0"], 2, "--limit"),
    ],
)
def test_bad_arguments_are_clear_refusals(install: Path, args: list[str], code: int, message: str) -> None:
    out = CliRunner().invoke(app, [*args, "--data", str(install)])
    assert out.exit_code == code, out.output
    assert message in out.output and "Traceback" not in out.output


def test_no_running_system_or_a_wrong_key(
    broker: Server, install: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    empty = tmp_path_factory.mktemp("empty")
    out = CliRunner().invoke(app, ["queues", "--data", str(empty)], env={"AWS_ENDPOINT_URL": ""})
    assert out.exit_code == 1 and "no running system" in out.output
    wrong = install / "wrong.json"
    wrong.write_text(json.dumps({"aws_access_key_id": KEY, "aws_secret_access_key": "not-the-secret"}))
    out = CliRunner().invoke(app, ["queues", "--data", str(install), "--key-file", str(wrong)])
    assert out.exit_code == 1 and "the broker refused" in out.output and "not-the-secret" not in out.output
    out = CliRunner().invoke(app, ["queues", "--endpoint", "ftp://x", "--data", str(install)])
    assert out.exit_code == 2 and "not an http(s) URL" in out.output
