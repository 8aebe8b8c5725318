"""Production mode against moto_server (the AWS stand-in): outside the embedded broker nothing creates the
topology at start; `scte up` and each service check it and stop, naming what is missing. And the two switches
of `scte up` refuse a bad value before anything starts.

The whole platform on moto_server and PostgreSQL, with the e2e flow suite: `make test-production`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness.platform import moto_server, scte_env, up_ports

from scte.bus.transports._provision import physical_name
from scte.bus.transports.aws import AwsTransport
from scte.platform import SERVICES, topology

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as endpoint:
        yield endpoint


def _words(text: str) -> str:
    """The output as one line of words: rich wraps long lines and frames its errors."""
    return " ".join(text.replace("│", " ").split())


def _scte_up(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scte.cli", "up", "--data", str(data), "--no-seed", *args],
        env=scte_env(up_ports(), env),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--broker", "kafka"),
        ("--broker", "ftp://127.0.0.1:21"),
        ("--broker", "http://"),
        ("--database", "mysql://root@127.0.0.1/scte"),
        ("--database", "postgresql://postgres@127.0.0.1/not-a-name"),
        ("--database", "sqlite3"),
    ],
)
def test_a_bad_switch_is_refused_before_anything_starts(tmp_path: Path, option: str, value: str) -> None:
    data = tmp_path / "data"
    done = _scte_up(data, option, value)
    said = _words(done.stderr)
    assert done.returncode == 2, said
    assert option in said
    assert ("expected `embedded`" if option == "--broker" else "expected `sqlite`") in said
    assert not data.exists()  # refused before the data directory, the broker or any service


def test_provision_is_refused_on_the_embedded_broker(tmp_path: Path) -> None:
    done = _scte_up(tmp_path / "data", "--provision")
    assert done.returncode == 2
    assert "always provisioned" in _words(done.stderr)


def test_a_refused_database_password_is_not_printed(tmp_path: Path) -> None:
    done = _scte_up(tmp_path / "data", "--database", "postgresql://scte:hunter2@127.0.0.1/bad-name")
    assert done.returncode == 2
    assert "hunter2" not in done.stdout + done.stderr


def test_scte_up_on_an_empty_broker_stops_and_names_what_is_missing(tmp_path: Path, moto: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    done = _scte_up(tmp_path / "data", "--broker", moto, env={"SCTE_QUEUE_PREFIX": prefix})
    out = _words(done.stdout + done.stderr)
    assert done.returncode == 1, out
    assert f"the topology is not deployed on {moto}" in out
    for name in ("members", "notifications", "search"):
        assert f"queue {prefix}{name}" in out.replace(".fifo", "")
    assert f"topic {prefix}certification.fifo" in out
    assert "scte up --provision" in out
    assert not list((tmp_path / "data" / "logs").glob("members*"))  # no service was started


async def _provision(endpoint: str, prefix: str) -> None:
    transport = AwsTransport(prefix, endpoint)
    try:
        await transport.provision(topology())
    finally:
        await transport.close()


async def _break(endpoint: str, prefix: str) -> tuple[str, str]:
    """Remove the notifications queue's subscription to the certification topic and the search queue's
    dead-letter queue; what the check must then report, in its words."""
    import aiobotocore.session

    session = aiobotocore.session.get_session()
    kwargs = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    notifications = physical_name(prefix, "notifications", False)
    certification = physical_name(prefix, "certification", True)
    search_dlq = physical_name(prefix, topology().queue("search").dead_letter_queue, topology().queue("search").fifo)
    async with session.create_client("sns", **kwargs) as sns, session.create_client("sqs", **kwargs) as sqs:
        topics = (await sns.list_topics())["Topics"]
        topic_arn = next(t["TopicArn"] for t in topics if t["TopicArn"].endswith(":" + certification))
        queue_url = (await sqs.get_queue_url(QueueName=notifications))["QueueUrl"]
        queue_arn = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        subscriptions = (await sns.list_subscriptions_by_topic(TopicArn=topic_arn))["Subscriptions"]
        (subscription,) = [s for s in subscriptions if s["Endpoint"] == queue_arn]
        await sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        await sqs.delete_queue(QueueUrl=(await sqs.get_queue_url(QueueName=search_dlq))["QueueUrl"])
    return f"subscription of queue {notifications} to topic {certification}", f"dead-letter queue {search_dlq}"


async def _check(endpoint: str, prefix: str) -> list[str]:
    transport = AwsTransport(prefix, endpoint)
    try:
        return await transport.check(topology())
    finally:
        await transport.close()


def test_the_check_names_exactly_what_is_missing(moto: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    asyncio.run(_provision(moto, prefix))
    assert asyncio.run(_check(moto, prefix)) == []  # provisioned: nothing missing
    subscription, dead_letter = asyncio.run(_break(moto, prefix))
    # the missing dead-letter queue is named once (not also the search queue's redrive policy to it)
    assert sorted(asyncio.run(_check(moto, prefix))) == sorted([dead_letter, subscription])


def test_a_service_outside_the_embedded_broker_checks_and_never_provisions(tmp_path: Path, moto: str) -> None:
    """The notifications service started alone, as a deployment starts it: on a broker lacking one of its
    subscriptions it stops (EX_CONFIG) and names it, and it created nothing; once the topology is whole it
    serves."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    asyncio.run(_provision(moto, prefix))
    subscription, _dead_letter = asyncio.run(_break(moto, prefix))
    port = up_ports()["notifications"]
    env = scte_env(
        extra={
            "SCTE_BROKER": moto,
            "SCTE_QUEUE_PREFIX": prefix,
            "SCTE_DATA_DIR": str(tmp_path),
            "SCTE_NOTIFICATIONS_PORT": str(port),
            "SCTE_PROVISION_ON_START": "true",  # ignored outside the embedded broker
        }
    )
    module = SERVICES["notifications"].module
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 78, done.stderr[-3000:]
    assert f"missing: {subscription}." in done.stderr
    assert "scte deploy cloudformation" in done.stderr
    assert asyncio.run(_check(moto, prefix)) != []  # it did not subscribe itself

    asyncio.run(_provision(moto, prefix))  # deployed whole (the search queue's too): the service serves
    process = subprocess.Popen([sys.executable, "-m", module], env=env, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < end, "the notifications service did not become healthy"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(60)


async def _sdk_endpoint(service: str) -> str:
    """The endpoint an SDK client made with no endpoint argument uses, in this process's environment."""
    import aiobotocore.session

    session = aiobotocore.session.get_session()
    async with session.create_client(
        service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    ) as client:
        return str(client.meta.endpoint_url)


@pytest.mark.parametrize("broker", ["embedded", "http://127.0.0.1:5000", "aws"])
def test_each_broker_gives_the_services_one_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broker: str
) -> None:
    """What `scte up` hands its children for each `--broker`: with `aws` no endpoint at all, not even one left
    in the operator's environment (the SDK's own endpoints, its credential chain and region)."""
    from scte.kit.settings import Settings
    from scte.up import Supervisor

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://stale.example:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://stale.example:2")
    env = Supervisor(tmp_path / "data", broker=broker).env
    for name in [n for n in os.environ if n.startswith(("AWS_", "SCTE_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(("AWS_", "SCTE_")):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert env["SCTE_BROKER"] == broker
    if broker == "embedded":
        assert settings.aws_endpoint_url == env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{env['SCTE_BROKER_PORT']}"
        assert "SCTE_BROKER_IDENTITY_DIR" in env  # a key per service on the embedded broker
        assert not settings.production
        return
    assert settings.production
    assert "SCTE_BROKER_IDENTITY_DIR" not in env  # the SDK's credential chain
    if broker == "aws":
        assert settings.aws_endpoint_url is None
        assert not [n for n in env if n.startswith("AWS_ENDPOINT_URL")]
        assert asyncio.run(_sdk_endpoint("sqs")) == "https://sqs.eu-west-1.amazonaws.com"
        assert asyncio.run(_sdk_endpoint("sns")) == "https://sns.eu-west-1.amazonaws.com"
    else:
        assert settings.aws_endpoint_url == env["AWS_ENDPOINT_URL"] == broker
