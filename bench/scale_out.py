"""Scale-out: a backlog on one service's queue drained by 1, 2 and 4 replicas of the service.

    python bench/scale_out.py                       # 20,000 events, 1/2/4 replicas, embedded broker, PostgreSQL
    python bench/scale_out.py --events 600 --replicas 1,2 --no-plot     # a smoke run
    python bench/scale_out.py --broker http://127.0.0.1:5000            # moto_server: the shape only

The service is `reports` (`--service` takes another consumer of the certification topic's awards only
if it counts them the same way; reports is the one): its queue is FIFO, and each
`certification.awarded.v1` adds one to a counter row `(program, month)` in the handler's transaction
with the inbox row, so an event counted twice shows in the sum.

For each replica count, from scratch: a fresh PostgreSQL database (migrated first), a fresh embedded
broker (`scte queue serve`; with `--broker`, that endpoint and a queue prefix of its own per count),
the topology, then the backlog published on the certification topic as the certification service's
outbox relay publishes it (N events over N/10 members, each member a FIFO group; every
`--redeliver-every`-th event published twice under another deduplication id, as a relay that crashed
after publishing and before marking does), then the replicas, all started at once (`scte up
--replicas` starts replica 0 first because it migrates; here the database is migrated already), each
with the service's usual concurrency.

Measured: from the moment every replica answers `/health` to the last event handled (the inbox's
`processed_at`, the service's wall clock), the events handled in that window per second; the start-up
ramp is left out. Checked at every count: each event in the inbox once, the counters' sum equal to the
events, each counter equal to its awards, the replicas' `processed` adding up to the events (every
redelivery recognised as a duplicate) and nothing dead-lettered. A count whose check fails is reported
as failed and the run exits 1.

Written: JSON to bench/results/scale_out.json (or `--out`), with the machine and the load before and
after each count (bench/conditions.py; the verdict says whether the run was quiet), and a PNG plot of
events/s per replica count to docs/scale_out.png (or `--plot`; matplotlib, the `bench` extra).
The goal on 2 cores: at least 1.6 times the events/s of 1 replica with 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from conditions import Conditions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.harness.fleet: the broker, the replicas

from sqlalchemy import func, select  # noqa: E402
from tests.harness import fleet  # noqa: E402

from scte.bus.storage import bus_inbox  # noqa: E402
from scte.contracts.certification import CertificationAwarded  # noqa: E402
from scte.kit.db import create_engine, run_migrations  # noqa: E402
from scte.kit.testing import POSTGRES_URL, postgres_database  # noqa: E402
from scte.platform import SERVICES  # noqa: E402
from scte.services.reports.db import award_counts  # noqa: E402

PROGRAMS = ("BPI", "DVEP", "BCT", "ECT")
GOAL_1_TO_2 = 1.6


def backlog(events: int, per_member: int = 10) -> list[CertificationAwarded]:
    """`events` awards over events/per_member members, interleaved (each member's in order); the
    counters spread over 4 programs x 120 months so that replicas rarely wait on one counter row."""
    members = max(1, events // per_member)
    out = []
    for n in range(events):
        member, k = n % members, n // members
        awarded = date(2016 + (n // 12) % 10, 1 + n % 12, 1 + k % 28)
        out.append(
            CertificationAwarded(
                certification_id=f"c-{n:06d}",
                member_id=f"m-{member:05d}",
                program=PROGRAMS[(n // 120) % len(PROGRAMS)],
                program_name="Program",
                awarded_on=awarded,
                expires_on=awarded.replace(year=awarded.year + 3),
            )
        )
    return out


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return dict(json.loads(response.read())["consumer"])


async def _inbox(database: str, service: str) -> tuple[int, list[datetime]]:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(bus_inbox.c.processed_at).where(bus_inbox.c.consumer == service))).all()
            return len(rows), sorted(r[0] for r in rows)
    finally:
        await engine.dispose()


async def _counters(database: str) -> tuple[dict[tuple[str, str], int], int]:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            counts = {(r.program, r.month): r.count for r in (await conn.execute(select(award_counts))).all()}
            total = int(await conn.scalar(select(func.coalesce(func.sum(award_counts.c.count), 0))) or 0)
            return counts, total
    finally:
        await engine.dispose()


def one_count(args: argparse.Namespace, replicas: int, broker_url: str, work: Path) -> dict[str, Any]:
    """Drain the backlog with `replicas` processes; the figures and the exactly-once check."""
    events = backlog(args.events)
    messages = fleet.messages_of(events, source="certification")
    published = []
    for n, message in enumerate(messages):
        published.append(message)
        if args.redeliver_every and n % args.redeliver_every == 0:  # right after it: its group, later
            published.append(fleet.redelivered(message, 1))
    prefix = f"so{replicas}-{int(time.time())}-" if args.broker else ""
    services = [args.service]

    async def prepare() -> None:
        await fleet.provision(broker_url, services, prefix)
        await fleet.publish(broker_url, services, "certification", published, prefix)

    report: dict[str, Any] = {"replicas": replicas, "events": len(events), "messages": len(published)}
    asyncio.run(_with_database(args, report, replicas, broker_url, work, prepare, prefix))
    return report


async def _with_database(
    args: argparse.Namespace,
    report: dict[str, Any],
    replicas: int,
    broker_url: str,
    work: Path,
    prepare: Any,
    prefix: str,
) -> None:
    async with postgres_database(args.database) as database:
        await asyncio.to_thread(run_migrations, SERVICES[args.service].module, database)
        started = time.monotonic()
        await prepare()
        report["publish_seconds"] = round(time.monotonic() - started, 2)
        await asyncio.to_thread(_drain, args, report, replicas, broker_url, work, database, prefix)
        await _check(args, report, database)


def _drain(
    args: argparse.Namespace,
    report: dict[str, Any],
    replicas: int,
    broker_url: str,
    work: Path,
    database: str,
    prefix: str,
) -> None:
    events = report["events"]
    data_dir = work / f"replicas-{replicas}"
    with fleet.replicas(
        args.service,
        replicas,
        data_dir=data_dir,
        broker_url=broker_url,
        database_url=database,
        prefix=prefix,
        together=True,
        timeout=300,
        embedded=not args.broker,
    ) as running:
        ready = datetime.now(UTC)
        deadline = time.monotonic() + args.timeout
        while True:
            stats = [_stats(url) for url in running.health]
            if sum(s["processed"] for s in stats) >= events:
                break
            if time.monotonic() > deadline or not running.alive():
                report["failed"] = f"not drained in {args.timeout} s (alive: {running.alive()}); stats {stats}"
                break
            time.sleep(0.5)
        time.sleep(1.0)  # the last duplicates' deletes
        report["replica_stats"] = [_stats(url) for url in running.health]
    report["ready_at"] = ready.isoformat()


async def _check(args: argparse.Namespace, report: dict[str, Any], database: str) -> None:
    events = report["events"]
    count, handled = await _inbox(database, args.service)
    ready = datetime.fromisoformat(report["ready_at"])
    counts, total = await _counters(database)
    expected = Counter((e.program, e.awarded_on.strftime("%Y-%m")) for e in backlog(args.events))  # as published
    stats = report.get("replica_stats", [])
    problems = []
    if count != events:
        problems.append(f"inbox holds {count} events, expected {events}")
    if total != events or counts != dict(expected):
        problems.append(f"the counters add up to {total}, expected {events} (each award once)")
    processed = sum(s["processed"] for s in stats)
    if processed != events:
        problems.append(f"the replicas processed {processed} events, expected {events}")
    if any(s["dead_lettered"] for s in stats):
        problems.append("messages were dead-lettered")
    report["exactly_once"] = not problems
    if problems:
        report["failed"] = "; ".join([report.get("failed", ""), *problems]).strip("; ")
    in_window = [t for t in handled if t >= ready]
    if in_window:
        seconds = max((in_window[-1] - ready).total_seconds(), 1e-6)
        report["seconds"] = round(seconds, 3)
        report["events_in_window"] = len(in_window)
        report["events_per_second"] = round(len(in_window) / seconds, 1)
    if handled:
        report["events_before_ready"] = len(handled) - len(in_window)
        report["per_replica_processed"] = [s["processed"] for s in stats]


def plot(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [r["replicas"] for r in results if "events_per_second" in r]
    rates = [r["events_per_second"] for r in results if "events_per_second" in r]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(counts, rates, marker="o", label="measured")
    if rates:
        ax.plot(counts, [rates[0] * c for c in counts], linestyle="--", color="grey", label="linear from 1 replica")
    for c, r in zip(counts, rates, strict=True):
        ax.annotate(f"{r:.0f}", (c, r), textcoords="offset points", xytext=(0, 8), ha="center")
    ax.set_xticks(counts)
    ax.set_xlabel("replicas of the service")
    ax.set_ylabel("events/s (backlog drained)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--replicas", default="1,2,4", help="replica counts, comma-separated")
    parser.add_argument("--service", default="reports", choices=["reports"])
    parser.add_argument("--broker", help="an SQS/SNS endpoint (moto_server) instead of the embedded broker")
    parser.add_argument("--database", default=POSTGRES_URL, help="PostgreSQL server (a database per count)")
    parser.add_argument("--redeliver-every", type=int, default=20, help="publish every Nth event twice (0: none)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per count to drain")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale_out.json")
    parser.add_argument("--plot", type=Path, default=HERE.parent / "docs" / "scale_out.png")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.replicas.split(",")]
    conditions = Conditions()
    results = []
    with tempfile.TemporaryDirectory(prefix="scale-out-") as tmp:
        work = Path(tmp)
        for replicas in counts:
            print(f"{replicas} replica(s): {args.events} events ...", file=sys.stderr, flush=True)
            with conditions.side(f"{replicas} replicas") as side:
                if args.broker:
                    result = one_count(args, replicas, args.broker, work)
                else:
                    with fleet.broker(work / f"queue-{replicas}", work / "logs") as broker_url:
                        result = one_count(args, replicas, broker_url, work)
            result["conditions"] = side
            results.append(result)
            print(
                f"  {result.get('events_per_second', '-')} events/s, exactly once: {result.get('exactly_once')}"
                + (f"; FAILED: {result['failed']}" if "failed" in result else ""),
                file=sys.stderr,
                flush=True,
            )
    rates = {r["replicas"]: r.get("events_per_second") for r in results}
    speedup = round(rates[2] / rates[1], 2) if rates.get(1) and rates.get(2) else None
    broker = args.broker or "embedded (scte queue serve)"
    report = {
        "bench": "scale_out",
        "service": args.service,
        "broker": broker,
        "database": "postgresql",
        "events": args.events,
        "redeliver_every": args.redeliver_every,
        "results": results,
        "speedup_1_to_2": speedup,
        "goal_1_to_2": GOAL_1_TO_2,
        "shape_only": bool(args.broker),
        "conditions": conditions.report(),
    }
    conditions.say()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if not args.no_plot:
        quiet = "quiet" if conditions.quiet else "NOT quiet"
        title = f"{args.service}: {args.events} events, {broker}, PostgreSQL ({quiet})"
        plot(results, args.plot, title)
    print(json.dumps({"speedup_1_to_2": speedup, "events_per_second": rates}), flush=True)
    return 0 if all(r.get("exactly_once") and "failed" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
