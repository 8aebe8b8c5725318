"""End-to-end benchmark of the bus: publish (outbox) -> relay -> broker -> consumer (inbox) -> handler.

    python bench/bus.py [--quick] [--events N] [--modes inprocess,http,faststream]

Prints one JSON document on stdout (machine, then one entry per mode), progress on stderr.

Modes, each on fresh databases in a temporary directory:
- inprocess: the `scte.queue` engine in this process (`InProcessTransport`), no HTTP;
- http: `scte queue serve` in a subprocess, the AWS transport (aiobotocore) over loopback;
- faststream: what a Python team would otherwise pick, FastStream with RabbitMQ (127.0.0.1:5672,
  guest/guest): a durable queue, persistent messages with publisher confirms, ack after the handler;
- faststream-bare (not run by default): the same with a handler that does no database work.

The work is the same everywhere: the handler inserts one effect row into a SQLite service database
(`scte.bus.database.sqlite_engine`, the inline driver) in a transaction that also checks and records
the event id (our inbox; for FastStream the same check and insert in its handler). Our events are
published through the transactional outbox (one transaction per event, as a service does: the
primary figure) and relayed; FastStream publishes straight to the broker.

Load averages are recorded per mode (before and after): the figures mean little on a busy machine.

Measured per mode: saturated throughput (`events` published by concurrent publishers as fast as they
go, until the last is handled) with publish-to-handler latency p50/p99 under that load, and unloaded
latency (one event at a time, `latency_samples` of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).parent))

from bus_faststream import run_faststream
from scte.bus.consumer import Consumer
from scte.bus.contracts import Event, EventRegistry
from scte.bus.database import sessionmaker, sqlite_engine
from scte.bus.envelope import Envelope
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.storage import bus_inbox, utcnow
from scte.bus.storage import metadata as bus_metadata
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology
from scte.bus.transport import Transport

CONTRACTS = EventRegistry()


@CONTRACTS.register
class Measured(Event):
    event_type: ClassVar[str] = "bench.measured.v1"
    seq: int
    t0: float


TOPOLOGY = Topology(
    topics=(TopicSpec("bench"),),
    queues=(QueueSpec("bench-consumer", subscriptions=(Subscription("bench"),)),),
)

service = MetaData()
effects = Table(
    "effects",
    service,
    Column("event_id", String, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("latency", Float, nullable=False),
)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def ms(value: float) -> float:
    return round(value * 1000, 3)


def summary(
    events: int, seconds: float, saturated: list[float], unloaded: list[float], cpu_seconds: float | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1),
        "saturated_latency_ms": {"p50": ms(percentile(saturated, 0.5)), "p99": ms(percentile(saturated, 0.99))},
        "unloaded_latency_ms": {
            "samples": len(unloaded),
            "p50": ms(percentile(unloaded, 0.5)),
            "p99": ms(percentile(unloaded, 0.99)),
        },
    }
    if cpu_seconds is not None:
        # CPU of this process (publishers, relay, consumer, handler; the broker too when in-process)
        # per event of the saturated run: steadier than events/s on a shared machine.
        out["cpu_ms_per_event"] = round(cpu_seconds * 1000 / events, 3)
    return out


async def service_db(directory: Path) -> tuple[Any, async_sessionmaker[AsyncSession]]:
    db = sqlite_engine(directory / "service.db")
    async with db.begin() as conn:
        await conn.run_sync(bus_metadata.create_all)
        await conn.run_sync(service.create_all)
    return db, sessionmaker(db)


async def run_ours(
    transport: Transport,
    directory: Path,
    *,
    events: int,
    publishers: int,
    latency_samples: int,
    concurrency: int,
    broker_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    db, sessions = await service_db(directory)
    await transport.provision(TOPOLOGY)
    latencies: list[float] = []
    state = {"handled": 0, "target": 0}
    done = asyncio.Event()

    async def handle(event: Measured, session: AsyncSession, envelope: Envelope) -> None:
        latency = time.perf_counter() - event.t0
        await session.execute(_EFFECT, {"event_id": envelope.id, "seq": event.seq, "latency": latency})
        latencies.append(latency)
        state["handled"] += 1
        if state["handled"] >= state["target"]:
            done.set()

    relay = OutboxRelay(sessions, transport, batch_size=200)
    publisher = Publisher("bench", TOPOLOGY, relay=relay)
    consumer = Consumer(
        transport,
        TOPOLOGY,
        CONTRACTS,
        queue="bench-consumer",
        handlers={Measured: handle},
        sessionmaker=sessions,
        concurrency=concurrency,
        wait_seconds=20,
    )

    async def publish(seq: int) -> None:
        async with sessions() as session, session.begin():
            await publisher.publish(session, Measured(seq=seq, t0=time.perf_counter()), topic="bench")

    relay.start()
    await consumer.start()
    try:
        state.update(handled=0, target=events)
        started = time.perf_counter()
        cpu_started = time.process_time()
        broker_started = broker_cpu() if broker_cpu else 0.0

        async def producer(first: int) -> None:
            for seq in range(first, events, publishers):
                await publish(seq)

        await asyncio.gather(*(producer(i) for i in range(publishers)))
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        broker = broker_cpu() - broker_started if broker_cpu else None
        saturated = list(latencies)
        latencies.clear()
        for seq in range(latency_samples):
            done.clear()
            state.update(handled=0, target=1)
            await publish(events + seq)
            await asyncio.wait_for(done.wait(), 30)
        unloaded = list(latencies)
    finally:
        await consumer.stop(grace_seconds=5)
        await relay.stop()
        await db.dispose()
    result = summary(events, elapsed, saturated, unloaded, cpu)
    if broker is not None:
        result["broker_cpu_ms_per_event"] = round(broker * 1000 / events, 3)
    result["consumer"] = {
        "processed": consumer.stats.processed,
        "duplicates": consumer.stats.duplicates,
        "retried": consumer.stats.retried,
    }
    return result


async def bench_inprocess(directory: Path, **options: Any) -> dict[str, Any]:
    from scte.bus.transports.inprocess import InProcessTransport
    from scte.queue.engine import Engine, EngineConfig

    engine = await Engine(EngineConfig(path=directory / "broker.db")).start()
    try:
        return await run_ours(InProcessTransport(engine), directory, **options)
    finally:
        await engine.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bench_http(directory: Path, **options: Any) -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped]

    from scte.bus.transports.aws import AwsTransport

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCTE_QUEUE_")}
    server = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is measured
        [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port), "--data", str(directory / "broker")],
        env=env,
        stdout=subprocess.DEVNULL,  # one JSON log line per request
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(urllib.request.urlopen, endpoint + "/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        transport = AwsTransport(endpoint_url=endpoint)
        process = psutil.Process(server.pid)

        def server_cpu() -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        try:
            return await run_ours(transport, directory, broker_cpu=server_cpu, **options)
        finally:
            await transport.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


async def bench_faststream(directory: Path, **options: Any) -> dict[str, Any]:
    db, sessions = await service_db(directory)

    async def work(session: AsyncSession, event_id: str, seq: int, latency: float) -> None:
        # What our consumer does around the same handler: the inbox check, the effect, the inbox row;
        # in one transaction on the same SQLite engine (`sqlite_engine`, the inline driver).
        seen = await session.scalar(_SEEN, {"consumer": "bench-faststream", "event_id": event_id})
        if seen is not None:
            return
        await session.execute(_EFFECT, {"event_id": event_id, "seq": seq, "latency": latency})
        await session.execute(_INBOX, {"consumer": "bench-faststream", "event_id": event_id, "processed_at": utcnow()})

    async def nothing(session: AsyncSession, event_id: str, seq: int, latency: float) -> None:
        pass

    try:
        raw = await run_faststream(
            sessions,
            nothing if options.get("bare") else work,
            events=options["events"],
            publishers=options["publishers"],
            latency_samples=options["latency_samples"],
        )
    finally:
        await db.dispose()
    return summary(raw["events"], raw["seconds"], raw["saturated"], raw["unloaded"], raw["cpu_seconds"])


_SEEN = select(bus_inbox.c.event_id).where(
    bus_inbox.c.consumer == bindparam("consumer"), bus_inbox.c.event_id == bindparam("event_id")
)
_EFFECT = insert(effects)
_INBOX = insert(bus_inbox)


async def bench_faststream_bare(directory: Path, **options: Any) -> dict[str, Any]:
    """FastStream with a handler that does no database work (its session's transaction is empty): what
    FastStream with RabbitMQ moves on its own, for comparison with the issue's reference figure."""
    return await bench_faststream(directory, bare=True, **options)


MODES: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "inprocess": bench_inprocess,
    "http": bench_http,
    "faststream": bench_faststream,
    "faststream-bare": bench_faststream_bare,
}
DEFAULT_MODES = "inprocess,http,faststream"


def machine() -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped]

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small runs, to check that it works")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--latency-samples", type=int, default=None)
    parser.add_argument("--publishers", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"of {', '.join(MODES)}")
    args = parser.parse_args()
    events = args.events or (2_000 if args.quick else 20_000)
    samples = args.latency_samples or (100 if args.quick else 1_000)
    report: dict[str, Any] = {
        "benchmark": "bus",
        "machine": machine(),
        "events": events,
        "events_per_transaction": 1,  # ours: one outbox row per business transaction, as a service publishes
        "publishers": args.publishers,
        "consumer_concurrency": args.concurrency,
        "results": {},
    }
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-bus-{mode}-") as tmp:
            progress(f"{mode}: {events} events saturated, then {samples} unloaded")
            options: dict[str, Any] = {"events": events, "publishers": args.publishers, "latency_samples": samples}
            if not mode.startswith("faststream"):
                options["concurrency"] = args.concurrency
            load_before = [round(x, 2) for x in os.getloadavg()]
            try:
                report["results"][mode] = await MODES[mode](Path(tmp), **options)
            except Exception as exc:  # one mode failing (no RabbitMQ) must not hide the others
                progress(f"{mode} failed: {exc!r}")
                report["results"][mode] = {"error": repr(exc)}
            report["results"][mode]["load_average"] = {
                "before": load_before,
                "after": [round(x, 2) for x in os.getloadavg()],
            }
            progress(f"{mode}: {json.dumps(report['results'][mode])}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
