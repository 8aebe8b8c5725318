"""Several processes of one service consuming its queue, without the rest of the platform.

The embedded broker (`scte queue serve`, or any SQS/SNS endpoint given), the topology provisioned on
it, the service's database, and its replicas started as `scte up --replicas` starts them: replica 0
first (it migrates the database and serves the API), then the others with `SCTE_REPLICA` and
`SCTE_REPLICA_PORT` (`scte.supervision.replicas`), each waited for on its `/health`.

Used by the focused replica test (tests/integration/supervision/test_replica_consumers.py) and by
bench/scale_out.py; both publish a burst of events on a topic the service consumes and read the
effects and the inbox from the service's database.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from scte.bus.contracts import Event
from scte.bus.envelope import encode
from scte.bus.transport import OutgoingMessage
from scte.bus.transports.aws import AwsTransport
from scte.platform import SERVICES, topology
from scte.supervision.replicas import replica_environment

SRC = Path(__file__).resolve().parents[2] / "src"
ACCESS_KEY = ("fleet-test", "fleet-test-secret")  # the embedded broker's default `--auth any` takes any key

__all__ = [
    "ACCESS_KEY",
    "Fleet",
    "broker",
    "free_port",
    "messages_of",
    "provision",
    "publish",
    "redelivered",
    "replicas",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(condition: object, what: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    env.update(
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY[0], "AWS_SECRET_ACCESS_KEY": ACCESS_KEY[1], "AWS_DEFAULT_REGION": "us-east-1"}
    )
    env.update(extra)
    return env


@contextmanager
def broker(data_dir: Path, log_dir: Path, timeout: float = 120.0) -> Iterator[str]:
    """`scte queue serve` on a free loopback port until the block ends; yields its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "scte.cli", "queue", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data", str(data_dir), "--log-level", "warning"]
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "broker.log").open("ab") as log:
        process = subprocess.Popen(argv, env=_base_env({}), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: _listening(port), "broker", timeout, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def transport(broker_url: str, services: Sequence[str], prefix: str = "") -> AwsTransport:
    """A client of the broker with the services' topology; `prefix`: of the queues' and topics' names
    (several runs on one broker, such as a moto_server that outlives them)."""
    return AwsTransport(
        prefix,
        endpoint_url=broker_url,
        region="us-east-1",
        topology=topology(list(services)),
        aws_access_key_id=ACCESS_KEY[0],
        aws_secret_access_key=ACCESS_KEY[1],
    )


async def provision(broker_url: str, services: Sequence[str], prefix: str = "") -> None:
    """The platform's topics and the services' queues (with their subscriptions) on the broker."""
    client = transport(broker_url, services, prefix)
    try:
        await client.provision(topology(list(services)))
    finally:
        await client.close()


def messages_of(events: Sequence[Event], *, source: str = "fleet") -> list[OutgoingMessage]:
    """The messages a service's outbox relay would publish for `events` (FIFO group: the subject;
    deduplication id: the event id)."""
    return [encode(event, source=source)[1] for event in events]


def redelivered(message: OutgoingMessage, attempt: int) -> OutgoingMessage:
    """The same event published again under another deduplication id, as a relay that crashed after
    publishing and before marking the row does it after its FIFO deduplication window: the broker
    delivers it again and only the consumer's inbox can tell."""
    return dataclasses.replace(message, deduplication_id=f"{message.deduplication_id}-again-{attempt}")


async def publish(
    broker_url: str, services: Sequence[str], topic: str, messages: Sequence[OutgoingMessage], prefix: str = ""
) -> None:
    """`messages` on `topic`, in order, ten to a call (one caller: each FIFO group keeps its order)."""
    client = transport(broker_url, services, prefix)
    try:
        for start in range(0, len(messages), 10):
            await client.publish(topic, messages[start : start + 10])
    finally:
        await client.close()


@dataclasses.dataclass
class Fleet:
    """The running replicas of one service."""

    service: str
    processes: list[subprocess.Popen[bytes]]
    health: list[str]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)


@contextmanager
def replicas(
    service: str,
    count: int,
    *,
    data_dir: Path,
    broker_url: str,
    database_url: str,
    env: dict[str, str] | None = None,
    prefix: str = "",
    timeout: float = 180.0,
    together: bool = False,
    embedded: bool = True,
) -> Iterator[Fleet]:
    """`count` processes of `service` until the block ends: replica 0 healthy before the others start
    (as `scte up` does: it migrates the database), or all at once with `together` (the database is
    migrated already; a benchmark wants them to start draining a backlog at the same moment).
    `embedded`: `broker_url` is the platform's own broker (`fleet.broker`), else any SQS/SNS endpoint
    (`scte up --broker URL`: the services check the topology there instead of provisioning it)."""
    info = SERVICES[service]
    port = free_port()
    common = _base_env(
        {
            "SCTE_DATA_DIR": str(data_dir),
            "SCTE_TRANSPORT": "aws",
            "AWS_ENDPOINT_URL": broker_url,
            **(
                {"SCTE_BROKER": "embedded", "SCTE_BROKER_PORT": str(urlsplit(broker_url).port)}
                if embedded
                else {"SCTE_BROKER": broker_url}
            ),
            "SCTE_PROVISION_ON_START": "false",
            f"SCTE_{service.upper()}_PORT": str(port),
            f"SCTE_{service.upper()}_DATABASE_URL": database_url,
            "SCTE_LOG_LEVEL": "warning",
            "SCTE_QUEUE_PREFIX": prefix,
            **(env or {}),
        }
    )
    argv = [sys.executable, "-m", info.module]
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    health: list[str] = []

    def start(index: int) -> None:
        replica_port = port if index == 0 else free_port()
        extra = replica_environment(index, replica_port) if index else {}
        with (logs / f"{service}-{index}.log").open("ab") as log:
            processes.append(subprocess.Popen(argv, env={**common, **extra}, stdout=log, stderr=subprocess.STDOUT))
        health.append(f"http://127.0.0.1:{replica_port}/health")

    try:
        start(0)
        if not together:
            _wait(lambda: _healthy(health[0]), f"{service} replica 0", timeout, processes[0])
        for index in range(1, count):
            start(index)
        for index in range(count):
            _wait(lambda i=index: _healthy(health[i]), f"{service} replica {index}", timeout, processes[index])
        yield Fleet(service, processes, health)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            _stop(process)
