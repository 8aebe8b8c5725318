"""Chaos: 10,000 events through 3 consumer processes while consumers are SIGKILLed at random and the
broker once; afterwards every event's effect is applied exactly once and none is lost.

The broker is `scte queue serve` (a subprocess), the consumers are processes using the AWS transport
against it, the effects and the inbox are in PostgreSQL (one schema per run), the events go through
the outbox and a relay in this process. SCTE_CHAOS_SEED replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).parent))

from chaos_model import QUEUE, TOPIC, TOPOLOGY, Counted

from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.storage import metadata
from scte.bus.transports.aws import AwsTransport
from scte.kit.testing import POSTGRES_URL, postgres_unreachable, skip_postgres_on_purpose

# Chaos for up to DEADLINE_SECONDS, then a calm drain that waits as long as effects keep coming
# (a loaded CI machine is slow, which is not loss); hence a timeout above pytest's default.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

EVENTS = 10_000
CONSUMERS = 3
DEADLINE_SECONDS = 80

WORKER = Path(__file__).parent / "chaos_worker.py"
SRC = Path(__file__).parents[3] / "src"


def child_env() -> dict[str, str]:
    """The environment of the broker and worker processes: this checkout's code, whatever is installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCTE_QUEUE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(self.port), "--data", str(self.data)],
            env=child_env(),
            stdout=subprocess.DEVNULL,  # one JSON log line per request
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("broker did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
async def database() -> AsyncIterator[tuple[AsyncEngine, str]]:
    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    skip_postgres_on_purpose()
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:  # no server answering: a failure, unless SCTE_TEST_SKIP_POSTGRES=1 (above)
        await admin.dispose()
        postgres_unreachable(exc)
    db = create_async_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            text("CREATE TABLE effects (event_id text PRIMARY KEY, seq integer NOT NULL, count integer NOT NULL)")
        )
    try:
        yield db, schema
    finally:
        await db.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def spawn(broker: Broker, schema: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), broker.endpoint, POSTGRES_URL, schema], env=child_env())


async def scalar(db: AsyncEngine, sql: str) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_every_event_applied_exactly_once_through_kills(
    database: tuple[AsyncEngine, str], tmp_path: Path
) -> None:
    db, schema = database
    seed = int(os.environ.get("SCTE_CHAOS_SEED", random.randrange(2**32)))
    print(f"chaos seed: {seed} (SCTE_CHAOS_SEED={seed} replays the kill schedule)")
    rng = random.Random(seed)
    broker = Broker(tmp_path / "broker")
    broker.start()
    transport = AwsTransport(endpoint_url=broker.endpoint, topology=TOPOLOGY, connect_timeout=1, max_attempts=1)
    relay = OutboxRelay(db, transport, batch_size=200, min_backoff=0.2, max_backoff=1.0)
    publisher = Publisher("chaos-test", TOPOLOGY, relay=relay)
    sessions = async_sessionmaker(db, expire_on_commit=False)
    workers: list[subprocess.Popen[bytes]] = []
    kills = {"consumer": 0, "broker": 0}
    started = time.monotonic()
    try:
        await transport.provision(TOPOLOGY)
        relay.start()
        workers = [spawn(broker, schema) for _ in range(CONSUMERS)]

        async def publish_share(start: int) -> None:  # transactions of 100 events, 8 publishers at once
            for first in range(start * 100, EVENTS, 800):
                async with sessions() as session, session.begin():
                    for seq in range(first, min(EVENTS, first + 100)):
                        await publisher.publish(session, Counted(seq=seq), topic=TOPIC)

        async def publish_all() -> None:
            await asyncio.gather(*(publish_share(i) for i in range(8)))

        publishing = asyncio.create_task(publish_all())
        broker_killed = False
        while True:
            # Kills every 0.5-1.25 s: the 10,000 events now take under 20 s, and the run must see ten.
            await asyncio.sleep(rng.uniform(0.5, 1.25))
            done = await scalar(db, "SELECT count(*) FROM effects")
            print(f"{time.monotonic() - started:.1f} s: {done} effects, {await relay.pending()} unsent")
            if done >= EVENTS and publishing.done():
                break
            if time.monotonic() - started > DEADLINE_SECONDS:
                break
            halfway = time.monotonic() - started > DEADLINE_SECONDS / 2  # a slow machine gets its kill too
            if not broker_killed and (done >= EVENTS * 0.4 or halfway) and not os.environ.get("SCTE_CHAOS_CALM"):
                broker_killed = True
                broker.kill()
                kills["broker"] += 1
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                broker.start()
                continue
            if os.environ.get("SCTE_CHAOS_CALM"):
                continue
            victim = rng.randrange(CONSUMERS)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills["consumer"] += 1
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            workers[victim] = spawn(broker, schema)
        await publishing
        # Drain: no more kills. An event not applied yet is only lost if the consumers stop making
        # progress on the rest; count it as lost after 30 s without any new effect.
        last, progressed = -1, time.monotonic()
        while (done := await scalar(db, "SELECT count(*) FROM effects")) < EVENTS:
            if done != last:
                last, progressed = done, time.monotonic()
            elif time.monotonic() - progressed > 30:
                break
            await asyncio.sleep(1)
        elapsed = time.monotonic() - started
        effects = await scalar(db, "SELECT count(*) FROM effects")
        not_once = await scalar(db, "SELECT count(*) FROM effects WHERE count <> 1")
        distinct_seq = await scalar(db, "SELECT count(DISTINCT seq) FROM effects")
        inbox = await scalar(db, "SELECT count(*) FROM bus_inbox")
        unsent = await relay.pending()
        dead = await transport.receive(TOPOLOGY.queue(QUEUE).dead_letter_queue, wait_seconds=0)
        print(
            f"chaos: {EVENTS} events, {kills['consumer']} consumer kills, {kills['broker']} broker kill(s), "
            f"{effects} effects ({not_once} not exactly once), {inbox} inbox rows, {unsent} unsent, "
            f"{len(dead)} dead letters, {elapsed:.1f} s"
        )
        assert kills["broker"] == 1
        assert kills["consumer"] >= 10
        assert unsent == 0
        assert effects == EVENTS, f"{EVENTS - effects} events lost (seed {seed})"
        assert distinct_seq == EVENTS
        assert not_once == 0, f"{not_once} effects applied more than once (seed {seed})"
        assert inbox == EVENTS
        assert dead == []
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        await relay.stop()
        await transport.close()
        broker.stop()
