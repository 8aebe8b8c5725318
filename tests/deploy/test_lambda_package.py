"""`scte deploy lambda`: the packaged notifications function, invoked locally with SQS event batches.

The zip is built (`--dependencies local`, this environment's wheels) and unpacked; the function runs in a
separate Python that sees only the unpacked zip and the standard library (`-I -S`), as Lambda runs it:
one process per execution environment, invoked several times. The test plays the event source mapping:
it receives real messages from the notifications queue on moto_server (SNS raw delivery from the members
topic, as the CloudFormation stack wires it), hands them over as the SQS event Lambda sends, and deletes
the records the function does not report in `batchItemFailures`. The inbox is a real database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import text

from scte.bus.envelope import encode
from scte.bus.topology import Topology
from scte.bus.transports.aws import AwsTransport
from scte.contracts.members import MemberRegistered
from scte.deploy.lambda_package import build
from scte.kit.db import create_engine
from scte.kit.testing import database_url
from scte.platform import TOPICS
from scte.services.notifications.service import QUEUE

# building the package and a cold start that compiles every module take minutes on a busy machine
pytestmark = pytest.mark.timeout(900)

REGION = "us-east-1"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}
RUNNER = """
import json, sys
root = sys.argv[1]
sys.path.insert(0, root)
import scte
assert scte.__file__.startswith(root), scte.__file__  # the packaged scte, not the developer's
from scte.deploy.lambda_notifications import handler
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    print(json.dumps(handler(json.loads(line), None)), flush=True)
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lambda")
    package = build(out / "build", dependencies="local")
    assert package.handler == "scte.deploy.lambda_notifications.handler"
    assert package.size_bytes < 50_000_000  # Lambda's limit for a zip uploaded directly; 250 MB unzipped
    root = out / "root"
    with zipfile.ZipFile(package.zip_path) as archive:
        assert sum(i.file_size for i in archive.infolist()) < 250_000_000
        names = set(archive.namelist())
        assert "scte/deploy/lambda_notifications.py" in names
        assert any(n.startswith("scte/services/notifications/migrations/versions/") for n in names)
        assert not [n for n in names if "__pycache__" in n]
        archive.extractall(root)
    return root


class Function:
    """One execution environment of the packaged function (a process kept across invocations)."""

    def __init__(self, root: Path, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", RUNNER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        assert self._read() == {"ready": True}

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the function's process ended ({self.process.wait()})"
        return json.loads(line)

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Mapping:
    """The event source mapping's part: receive, hand the batch over as Lambda does, delete the successes."""

    def __init__(self, endpoint: str, queue_name: str) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **_keys())
        self.url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def receive(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < count:
            assert time.monotonic() < deadline, f"{len(messages)} of {count} messages arrived"
            got = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages += got.get("Messages", [])
        return messages

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The SQS event Lambda sends (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {
                        name: {
                            "stringValue": value.get("StringValue"),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": value["DataType"],
                        }
                        for name, value in m.get("MessageAttributes", {}).items()
                    },
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def settle(self, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": KEYS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": KEYS["AWS_SECRET_ACCESS_KEY"]}


def registered(member_id: str, display_name: str = "Ada") -> MemberRegistered:
    return MemberRegistered(
        member_id=member_id,
        email=f"{member_id}@example.org",
        display_name=display_name,
        registered_at=datetime.now(UTC),
    )


@pytest.fixture
async def wired(moto_endpoint: str) -> AsyncIterator[tuple[str, AwsTransport]]:
    """The notifications queue and the topics on moto_server under a fresh prefix (what the stack makes)."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    transport = AwsTransport(
        prefix, moto_endpoint, REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    await transport.provision(Topology(topics=TOPICS, queues=(QUEUE,)))
    try:
        yield prefix, transport
    finally:
        await transport.close()


@pytest.fixture
def start(unpacked: Path, wired: tuple[str, AwsTransport], moto_endpoint: str) -> Iterator[Callable[[str], Function]]:
    """Start the packaged function on a database (an execution environment; closed after the test)."""
    prefix, _transport = wired
    started: list[Function] = []

    def run(database: str) -> Function:
        environment = {
            "PATH": "/usr/bin:/bin",
            "SCTE_NOTIFICATIONS_DATABASE_URL": database,
            "SCTE_QUEUE_PREFIX": prefix,
            "SCTE_BROKER": moto_endpoint,
            **KEYS,
        }
        started.append(Function(unpacked, environment))
        return started[-1]

    yield run
    for function in started:
        function.close()


async def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(r) for r in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_duplicate_delivery_has_exactly_one_effect(
    start: Callable[[str], Function], wired: tuple[str, AwsTransport], moto_endpoint: str, tmp_path: Path, kind: str
) -> None:
    async with database_url(kind, tmp_path, "notifications") as database:
        await duplicate_delivery(start(database), wired, database, moto_endpoint)


async def duplicate_delivery(
    function: Function, wired: tuple[str, AwsTransport], database: str, moto_endpoint: str
) -> None:
    prefix, transport = wired
    envelope, message = encode(registered("m-dup"), source="members")
    await transport.publish("members", [message])  # SNS -> the queue, raw, through the filter policy
    mapping = Mapping(moto_endpoint, f"{prefix}notifications")
    (first,) = mapping.receive(1)
    assert first["MessageAttributes"]["ce-id"]["StringValue"] == envelope.id
    # at-least-once: the same event delivered a second time (another message id, the same event id)
    mapping.sqs.send_message(
        QueueUrl=mapping.url, MessageBody=first["Body"], MessageAttributes=first["MessageAttributes"]
    )
    mapping.settle([first], response := function.invoke(mapping.event([first])))
    assert response == {"batchItemFailures": []}
    (second,) = mapping.receive(1)
    assert second["MessageId"] != first["MessageId"]
    response = function.invoke(mapping.event([second]))
    assert response == {"batchItemFailures": []}  # a duplicate is a success: the mapping deletes it
    mapping.settle([second], response)

    assert await rows(database, "SELECT consumer, event_id FROM bus_inbox") == [("notifications", envelope.id)]
    assert await rows(database, "SELECT template, cause_event_id FROM deliveries") == [("welcome", envelope.id)]
    assert await rows(database, "SELECT member_id, email FROM recipients") == [("m-dup", "m-dup@example.org")]
    assert mapping.sqs.receive_message(QueueUrl=mapping.url, WaitTimeSeconds=1).get("Messages") is None


async def test_a_failed_record_is_reported_and_comes_back_the_others_are_done(
    start: Callable[[str], Function], wired: tuple[str, AwsTransport], moto_endpoint: str, tmp_path: Path
) -> None:
    # the failure is PostgreSQL's: a display name longer than its column (SQLite would keep it)
    async with database_url("postgresql", tmp_path, "notifications") as database:
        await failed_record(start(database), wired, database, moto_endpoint)


async def failed_record(function: Function, wired: tuple[str, AwsTransport], database: str, moto_endpoint: str) -> None:
    prefix, transport = wired
    events = [registered("m-1"), registered("m-2", display_name="x" * 300), registered("m-3")]
    await transport.publish("members", [encode(e, source="members")[1] for e in events])
    mapping = Mapping(moto_endpoint, f"{prefix}notifications")
    messages = mapping.receive(3)
    bad = next(m for m in messages if json.loads(m["Body"])["member_id"] == "m-2")

    response = function.invoke(mapping.event(messages))
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["MessageId"]}]}
    mapping.settle(messages, response)
    assert sorted(await rows(database, "SELECT member_id FROM recipients")) == [("m-1",), ("m-3",)]
    assert sorted(r[0] for r in await rows(database, "SELECT recipient_id FROM deliveries")) == ["m-1", "m-3"]

    # not deleted: it comes back after the backoff the function set, its receive count up by one
    (again,) = mapping.receive(1, timeout=120)
    assert again["MessageId"] == bad["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_an_unknown_dependencies_mode_is_refused_with_a_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scte.cli", "deploy", "lambda", "--dependencies", "bogus", "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert "--dependencies must be pip, local or none, not 'bogus'" in done.stderr
    assert not (tmp_path / "o").exists()


def test_the_function_refuses_a_wrong_environment_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from scte.deploy.lambda_notifications import ConfigurationError, database_url, endpoint_url

    monkeypatch.delenv("SCTE_BROKER", raising=False)
    assert endpoint_url() is None  # AWS itself
    monkeypatch.setenv("SCTE_BROKER", "http://127.0.0.1:5000/")
    assert endpoint_url() == "http://127.0.0.1:5000"
    for wrong, reason in (("embedded", "reads an SQS queue"), ("ftp://example.org", "expected `embedded`")):
        monkeypatch.setenv("SCTE_BROKER", wrong)
        with pytest.raises(ConfigurationError, match=reason):
            endpoint_url()
    monkeypatch.setenv("SCTE_NOTIFICATIONS_DATABASE_URL", " ")
    with pytest.raises(ConfigurationError, match="SCTE_NOTIFICATIONS_DATABASE_URL is not set"):
        database_url()
