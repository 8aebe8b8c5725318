"""End-to-end benchmark of the bus: publish (outbox) -> relay -> broker -> consumer (inbox) -> handler.

    python bench/bus.py [--quick] [--events N] [--modes http,http-per-event,...] [--runs R]

Prints one JSON document on stdout (machine and conditions, then one entry per mode and run), progress
on stderr. `--runs R` runs the whole list of modes R times, interleaved (mode 1, mode 2, ..., mode 1, ...),
so that a machine getting busier or quieter weighs on every mode alike.

A mode is `<side>[-service][-per-event|-grouped][-full]`, each on fresh databases in a temporary directory:
- side `http` (the headline: a networked broker, as RabbitMQ is): `scte queue serve` in a subprocess,
  the AWS transport over loopback; side `inprocess`: the `scte.queue` engine in this process, no network;
  side `faststream`: what a Python team would otherwise pick, FastStream 0.7.8 with RabbitMQ
  (127.0.0.1:5672): a durable queue, persistent messages with publisher confirms, ack after the handler;
- transactions on the consumer's side: ours by default commits the messages of one receive (up to 10)
  in one transaction (`Consumer.handle_many`, each handler in a savepoint), `-per-event` gives every
  event its own transaction (`Consumer(transaction_per_event=True)`). FastStream by default commits
  once per event; FastStream has no batch subscriber for RabbitMQ (only for Kafka, Redis and NATS),
  so `-grouped` is the nearest a FastStream user can write: handlers hand their event to a group that
  commits up to 10 in one transaction (each in a savepoint, as ours) and return when it committed;
- durability: by default our broker and the SQLite databases run at `synchronous=NORMAL` (a commit
  survives a process crash, not a power loss); `-full` runs our broker at `durability=full` and every
  SQLite database of the side (outbox, inbox, effects) at `synchronous=FULL` (fsync per commit), as
  RabbitMQ's publisher confirms of persistent messages come after its disk write;
- concurrency: our consumer runs `--concurrency` handlers (32); FastStream's channel gets
  `prefetch_count` = the same number, which bounds its concurrent handlers too (aio-pika starts a
  task per delivered, unacknowledged message);
- `faststream-bare` (not run by default): FastStream with a handler that does no database work;
- `-service` (ours only, not run by default): the same handler, relay and consumer options wired by the
  declarative service (`scte.bus.service.Service`: `service.running(transport=...)`) instead of by
  hand, to show in one run that the service object costs nothing on the path
  (`--modes inprocess,inprocess-service,http,http-service --runs 3`).

The work is the same everywhere: the handler inserts one effect row into a SQLite service database
(`scte.bus.database.sqlite_engine`, the inline driver) in a transaction that also checks and records
the event id (our inbox; for FastStream the same check and insert in its handler). Our events are
published through the transactional outbox (one transaction per event, as a service does) and relayed;
FastStream publishes straight to the broker. Where the two still differ is listed in docs/benchmarks.md.

Every mode records the load average before and after it and the CPU other processes used meanwhile
(bench/conditions.py); a run is only called quiet when every mode ran on a quiet machine.

Measured per mode: saturated throughput (`events` published by concurrent publishers as fast as they
go, until the last is handled) with publish-to-handler latency p50/p99 under that load, and unloaded
latency (one event at a time, `latency_samples` of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, bindparam, event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).parent))

from bus_faststream import run_faststream
from conditions import Conditions, rabbitmq_processes
from scte.bus.consumer import Consumer
from scte.bus.contracts import Event, EventRegistry
from scte.bus.database import sessionmaker, sqlite_engine
from scte.bus.envelope import Envelope
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.service import RunningService, Service
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


def synchronous_full(db: Any) -> None:
    """`synchronous=FULL` on every connection of a SQLite engine (after `configure_sqlite`'s NORMAL)."""

    @event.listens_for(db.sync_engine, "connect")
    def _full(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


async def service_db(directory: Path, *, full: bool = False) -> tuple[Any, async_sessionmaker[AsyncSession]]:
    db = sqlite_engine(directory / "service.db")
    if full:
        synchronous_full(db)
    async with db.begin() as conn:
        level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        assert level == (2 if full else 1), f"service database at synchronous={level}"  # FULL=2, NORMAL=1
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
    per_event: bool = False,
    full: bool = False,
    service: bool = False,
    broker_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    db, sessions = await service_db(directory, full=full)
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

    running: RunningService | None = None
    if service:  # the declarative service, with the options of the hand wiring below
        running = Service(
            "bench",
            topics=TOPOLOGY.topics,
            queue=TOPOLOGY.queues[0],
            handlers={Measured: handle},
            registry=CONTRACTS,
            create_engine=lambda _url: db,
            prepare_database=_tables_made,
            concurrency=concurrency,
            relay_options={"batch_size": 200},
            consumer_options={"wait_seconds": 20, "transaction_per_event": per_event},
        ).running(transport=transport, provision=False)
        await running.open()
        assert running.sessionmaker is not None and running.relay is not None and running.publisher is not None
        sessions, relay, publisher = running.sessionmaker, running.relay, running.publisher
    else:
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
            transaction_per_event=per_event,
        )

    async def publish(seq: int) -> None:
        async with sessions() as session, session.begin():
            await publisher.publish(session, Measured(seq=seq, t0=time.perf_counter()), topic="bench")

    if running is not None:
        await running.start()
        assert running.consumer is not None
        consumer = running.consumer
    else:
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
        if running is not None:
            await running.stop(10)  # the consumer gets half: the 5 s of the hand wiring
        else:
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

    durability = "full" if options.get("full") else "normal"
    engine = await Engine(EngineConfig(path=directory / "broker.db", durability=durability)).start()
    try:
        return await run_ours(InProcessTransport(engine), directory, **options)
    finally:
        await engine.close()


async def _tables_made(_url: str) -> None:
    """The declarative side's database is `service_db`'s, its tables made there."""


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
        [
            *(sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port)),
            *("--data", str(directory / "broker"), "--durability", "full" if options.get("full") else "normal"),
        ],
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
    db, sessions = await service_db(directory, full=options.get("full", False))

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
            prefetch=options["concurrency"],
            grouped=options.get("grouped", False),
        )
    finally:
        await db.dispose()
    result = summary(raw["events"], raw["seconds"], raw["saturated"], raw["unloaded"], raw["cpu_seconds"])
    if raw["group_transactions"] is not None:  # saturated and unloaded together
        result["group_transactions"] = raw["group_transactions"]
    return result


_SEEN = select(bus_inbox.c.event_id).where(
    bus_inbox.c.consumer == bindparam("consumer"), bus_inbox.c.event_id == bindparam("event_id")
)
_EFFECT = insert(effects)
_INBOX = insert(bus_inbox)


async def bench_faststream_bare(directory: Path, **options: Any) -> dict[str, Any]:
    """FastStream with a handler that does no database work (its session's transaction is empty): what
    FastStream with RabbitMQ moves on its own, for comparison with the issue's reference figure."""
    return await bench_faststream(directory, bare=True, **options)


SIDES: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "inprocess": bench_inprocess,
    "http": bench_http,
    "faststream": bench_faststream,
    "faststream-bare": bench_faststream_bare,
}
DEFAULT_MODES = ",".join(
    (
        "http",  # the headline
        "http-per-event",
        "http-full",
        "http-full-per-event",
        "inprocess",
        "inprocess-per-event",
        "faststream",
        "faststream-grouped",
        "faststream-full",
        "faststream-full-grouped",
    )
)


def parse_mode(mode: str) -> tuple[str, dict[str, Any]]:
    """`http-full-per-event` -> ("http", {"full": True, "per_event": True}); refuses what does not exist."""
    side, flags = mode, {"full": False}
    if side.endswith("-full"):
        side, flags["full"] = side[: -len("-full")], True
    for suffix, key in (("-per-event", "per_event"), ("-grouped", "grouped")):
        if side.endswith(suffix):
            side, flags[key] = side[: -len(suffix)], True
    if side.endswith("-service"):
        side, flags["service"] = side[: -len("-service")], True
    if side.endswith("-full"):  # either order
        side, flags["full"] = side[: -len("-full")], True
    if side not in SIDES:
        raise SystemExit(
            f"unknown mode {mode!r}: a side of {', '.join(SIDES)}, then -service, -per-event/-grouped, -full"
        )
    if flags.get("service") and side.startswith("faststream"):
        raise SystemExit(f"{mode}: -service is ours (the declarative service); FastStream has its own wiring")
    if flags.get("per_event") and side.startswith("faststream"):
        raise SystemExit(f"{mode}: FastStream commits per event by default; its batched variant is -grouped")
    if flags.get("grouped") and not side.startswith("faststream"):
        raise SystemExit(f"{mode}: ours groups by default; its per-event variant is -per-event")
    return side, flags


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small runs, to check that it works")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--latency-samples", type=int, default=None)
    parser.add_argument("--publishers", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32, help="our consumer's; FastStream's prefetch")
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"sides {', '.join(SIDES)} (see the docstring)")
    parser.add_argument("--runs", type=int, default=1, help="repeat the list of modes, interleaved")
    args = parser.parse_args()
    events = args.events or (2_000 if args.quick else 20_000)
    samples = args.latency_samples or (100 if args.quick else 1_000)
    modes = [m for m in args.modes.split(",") if m]
    parsed = {mode: parse_mode(mode) for mode in modes}
    conditions = Conditions()
    report: dict[str, Any] = {
        "benchmark": "bus",
        "command": " ".join(sys.argv),
        "events": events,
        "latency_samples": samples,
        "events_per_publishing_transaction": 1,  # ours: one outbox row per business transaction
        "publishers": args.publishers,
        "consumer_concurrency": args.concurrency,
        "faststream_prefetch": args.concurrency,
        "runs": args.runs,
        "results": {mode: [] for mode in modes},
    }
    for run in range(1, args.runs + 1):
        for mode in modes:
            side, flags = parsed[mode]
            with tempfile.TemporaryDirectory(prefix=f"bench-bus-{mode}-") as tmp:
                progress(f"run {run}, {mode}: {events} events saturated, then {samples} unloaded")
                options: dict[str, Any] = {
                    "events": events,
                    "publishers": args.publishers,
                    "latency_samples": samples,
                    "concurrency": args.concurrency,
                    **flags,
                }
                extra = rabbitmq_processes() if side.startswith("faststream") else []
                with conditions.side(f"{mode}#{run}", extra_processes=extra) as load:
                    try:
                        result = await SIDES[side](Path(tmp), **options)
                    except Exception as exc:  # one mode failing (no RabbitMQ) must not hide the others
                        progress(f"{mode} failed: {exc!r}")
                        result = {"error": repr(exc)}
                result["run"] = run
                result["transactions"] = (
                    "one per event"
                    if flags.get("per_event") or (side.startswith("faststream") and not flags.get("grouped"))
                    else "one per group of up to 10 events"
                )
                result["durability"] = "full (fsync per commit)" if flags["full"] else "normal"
                result["conditions"] = load
                report["results"][mode].append(result)
                progress(f"{mode}: {json.dumps(result)}")
    report["ratios_in_the_same_run"] = ratios(report["results"], args.runs)
    report["conditions"] = conditions.report()
    print(json.dumps(report, indent=2))
    conditions.say()


# (ours, theirs): events/s of ours over theirs, per run; the first is the headline
COMPARISONS = (
    ("http", "faststream"),
    ("http-full-per-event", "faststream-full"),
    ("http-per-event", "faststream"),
    ("http", "faststream-grouped"),
    ("http-full", "faststream-full-grouped"),
    ("inprocess", "faststream"),
    ("inprocess-per-event", "faststream"),
)


def ratios(results: dict[str, list[dict[str, Any]]], runs: int) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for ours, theirs in COMPARISONS:
        if ours not in results or theirs not in results:
            continue
        per_run: list[float | None] = []
        for run in range(runs):
            a = results[ours][run].get("events_per_second")
            b = results[theirs][run].get("events_per_second")
            per_run.append(round(a / b, 2) if a and b else None)
        out[f"{ours} / {theirs}"] = per_run
    return out


if __name__ == "__main__":
    asyncio.run(main())
