"""Benchmark of the queue engine against a plain sqlite3 loop doing the same work, on this machine.

    python bench/queue_engine.py [--quick] [--messages N] [--backlog N] [--dir DIR]

Prints one JSON document on stdout, progress on stderr. Measurements, each on a fresh database:

- batched cycle: one producer (SendMessageBatch of 10) and one consumer (ReceiveMessage of up to 10 with a
  1 s long poll, then DeleteMessageBatch) running concurrently over N messages;
- unbatched cycle: 32 tasks, each sending one message, receiving one and deleting it, over N messages;
- receive latency (max 1 message, the receive alone is timed; each received message is deleted and
  replaced so the backlog stays put) with 1,000 queued messages and with a large backlog, and at each
  backlog how long `Engine.queue_gauges` (a /metrics scrape's gauges) holds the broker's loop;
- queue depth at each backlog (`depth`): GetQueueAttributes of the three ApproximateNumberOfMessages*
  counts and a scrape's gauges timed alone, and the p50/p99 of sends to a second queue alone, while a
  GetQueueAttributes loop runs and while a scrape loop runs (what a depth read costs every other queue);
- two plain sqlite3 baselines, WAL and synchronous=NORMAL, one table indexed on (queue_id, visible_at),
  200-byte bodies, one thread, no framework around them:
  - serial (`plain_sqlite`): first every insert, 10 per transaction; then, per 10 messages, one
    transaction that selects 10 visible and marks them invisible and another that deletes them: 3
    commits per 10 messages, and a cycle rate of 1 / (1/inserts + 1/receive-and-delete);
  - grouped commit (`plain_sqlite_grouped`): what the engine does when a producer and a consumer run
    together, by hand: per round one transaction inserts 10, receives 10 (select and mark) and deletes
    the 10 received the round before: 1 commit per 10 messages, the ceiling of a group-committing
    queue on this SQLite. The engine's cycles are reported as ratios of both.

`--save` also writes the JSON to bench/results/queue_engine-<UTC time>.json (every recorded run is kept).
Around each measurement the load and the CPU of other processes are recorded (bench/conditions.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from conditions import Conditions
from scte.queue import Engine, EngineConfig

BODY_BYTES = 200
QUEUE = "bench"
SMALL_BACKLOG = 1_000
LATENCY_SAMPLES = 20_000  # enough for a stable p99 (200 samples in the tail)
UNBATCHED_TASKS = 32
FILL_TASKS = 8


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def body(i: int) -> str:
    head = f"{i:012d}."
    return head + "x" * (BODY_BYTES - len(head))


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def file_size_mb(db: Path) -> float:
    total = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
    return round(total / 2**20, 1)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


@contextmanager
def fresh_db(root: Path, name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=root, prefix=f"{name}-") as tmp:
        yield Path(tmp) / "broker.db"


def stats_since(stats: dict[str, int], base: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {k: stats[k] - base.get(k, 0) for k in stats}
    out["operations_per_transaction"] = round(out["operations"] / max(1, out["transactions"]), 2)
    return out


# -- (a) batched cycle -------------------------------------------------------------------------------


async def batched_cycle(db: Path, messages: int) -> dict[str, Any]:
    async with Engine(EngineConfig(path=db)) as engine:
        await engine.create_queue(QUEUE)
        base = dict(engine.stats)

        async def producer() -> None:
            for start in range(0, messages, 10):
                entries = [{"Id": str(i), "MessageBody": body(start + i)} for i in range(min(10, messages - start))]
                result = await engine.send_message_batch(QUEUE, entries)
                assert not result["Failed"], result["Failed"]

        async def consumer() -> None:
            done = 0
            while done < messages:
                got = await engine.receive_message(QUEUE, max_number=10, wait_time_seconds=1)
                if not got:
                    continue
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
                result = await engine.delete_message_batch(QUEUE, entries)
                assert not result["Failed"], result["Failed"]
                done += len(got)

        started = time.perf_counter()
        await asyncio.gather(producer(), consumer())
        elapsed = time.perf_counter() - started
        stats = stats_since(engine.stats, base)
        size = file_size_mb(db)
    return {
        "messages": messages,
        "seconds": round(elapsed, 3),
        "messages_per_s": rate(messages, elapsed),
        "engine_stats": stats,
        "db_size_mb": size,
    }


# -- (b) unbatched cycle -----------------------------------------------------------------------------


async def unbatched_cycle(db: Path, messages: int) -> dict[str, Any]:
    per_task = max(1, messages // UNBATCHED_TASKS)
    total = per_task * UNBATCHED_TASKS
    async with Engine(EngineConfig(path=db)) as engine:
        await engine.create_queue(QUEUE)
        base = dict(engine.stats)

        async def worker(task: int) -> None:
            for n in range(per_task):
                await engine.send_message(QUEUE, body(task * per_task + n))
                while True:
                    got = await engine.receive_message(QUEUE, max_number=1, wait_time_seconds=1)
                    if got:
                        break
                await engine.delete_message(QUEUE, got[0]["ReceiptHandle"])

        started = time.perf_counter()
        await asyncio.gather(*(worker(t) for t in range(UNBATCHED_TASKS)))
        elapsed = time.perf_counter() - started
        stats = stats_since(engine.stats, base)
    return {
        "messages": total,
        "tasks": UNBATCHED_TASKS,
        "seconds": round(elapsed, 3),
        "messages_per_s": rate(total, elapsed),
        "engine_stats": stats,
    }


# -- (c) receive latency against the backlog ----------------------------------------------------------


async def fill(engine: Engine, count: int) -> float:
    """Send `count` messages in batches of 10 from several tasks at once; returns the seconds taken."""
    entries = [{"Id": str(i), "MessageBody": body(i)} for i in range(10)]
    batches = count // 10
    next_batch = 0
    reported = time.perf_counter()

    async def sender() -> None:
        nonlocal next_batch, reported
        while next_batch < batches:
            next_batch += 1
            result = await engine.send_message_batch(QUEUE, entries)
            assert not result["Failed"], result["Failed"]
            if time.perf_counter() - reported > 10:
                reported = time.perf_counter()
                progress(f"  filled {next_batch * 10:,} of {count:,}")

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(FILL_TASKS)))
    return time.perf_counter() - started


async def receive_latency(db: Path, backlog: int) -> dict[str, Any]:
    async with Engine(EngineConfig(path=db)) as engine:
        await engine.create_queue(QUEUE, {"VisibilityTimeout": "43200"})
        fill_seconds = await fill(engine, backlog)
        attrs = await engine.get_queue_attributes(QUEUE, ["ApproximateNumberOfMessages"])
        queued = int(attrs["ApproximateNumberOfMessages"])
        base = dict(engine.stats)
        samples: list[float] = []
        for n in range(LATENCY_SAMPLES):
            started = time.perf_counter()
            got = await engine.receive_message(QUEUE, max_number=1, wait_time_seconds=0)
            samples.append(time.perf_counter() - started)
            assert got, "the backlog ran dry"
            # Not timed: keep the backlog where it is.
            await engine.delete_message(QUEUE, got[0]["ReceiptHandle"])
            await engine.send_message(QUEUE, body(backlog + n))
        stats = stats_since(engine.stats, base)
        # What a /metrics scrape holds the broker's loop for at this backlog (Engine.queue_gauges).
        gauges: list[float] = []
        for _ in range(3):
            started = time.perf_counter()
            await engine.queue_gauges()
            gauges.append(time.perf_counter() - started)
        depth = await depth_reads(engine)
        size = file_size_mb(db)
    samples.sort()
    return {
        "backlog": queued,
        "fill_seconds": round(fill_seconds, 2),
        "fill_messages_per_s": rate(backlog, fill_seconds),
        "receives": len(samples),
        "p50_ms": round(percentile(samples, 0.50) * 1000, 3),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
        "max_ms": round(samples[-1] * 1000, 3),
        "metrics_gauges_ms": round(sorted(gauges)[1] * 1000, 1),  # the median of three
        "depth": depth,
        "engine_stats": stats,
        "db_size_mb": size,
    }


DEPTH_NAMES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
OTHER_SENDS = 2_000  # sends to a second queue timed, alone and while a depth-read loop runs
OTHER_SECONDS = 20.0  # at most this long per phase (when each read holds the loop, few sends get through)


def _ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "sends": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def depth_reads(engine: Engine) -> dict[str, Any]:
    """The queue depth at this backlog: GetQueueAttributes of the three counts and a scrape's gauges, each
    timed alone (median of 5); then sends to a second queue, one at a time, timed with nothing else running
    and while a loop of the depth reads runs beside them (a monitoring system scraping without pause):
    whatever the reads hold the broker's loop for, every other queue waits for too."""

    async def timed_median(call: Callable[[], Any]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)
        return round(sorted(times)[2] * 1000, 3)

    attributes_ms = await timed_median(lambda: engine.get_queue_attributes(QUEUE, DEPTH_NAMES))
    gauges_ms = await timed_median(engine.queue_gauges)
    other = "other"
    await engine.create_queue(other)

    async def sends() -> list[float]:
        out = []
        deadline = time.perf_counter() + OTHER_SECONDS
        for i in range(OTHER_SENDS):
            started = time.perf_counter()
            await engine.send_message(other, body(i))
            out.append(time.perf_counter() - started)
            if started > deadline:
                break
        return out

    async def beside(loop: Callable[[], Any]) -> dict[str, float]:
        done = False
        reads = 0

        async def reader() -> None:
            nonlocal reads
            while not done:
                await loop()
                reads += 1
                await asyncio.sleep(0)  # another turn for the senders between two reads

        task = asyncio.create_task(reader())
        try:
            result = _ms(await sends())
        finally:
            done = True
            await task
        return {**result, "reads_meanwhile": reads}

    alone = _ms(await sends())
    with_attributes = await beside(lambda: engine.get_queue_attributes(QUEUE, DEPTH_NAMES))
    with_scrapes = await beside(engine.queue_gauges)
    await engine.purge_queue(other)
    return {
        "get_queue_attributes_ms": attributes_ms,
        "scrape_gauges_ms": gauges_ms,
        "other_queue_sends": {
            "alone": alone,
            "during_attribute_loop": with_attributes,
            "during_scrape_loop": with_scrapes,
        },
    }


# -- (d) the plain sqlite3 baseline -------------------------------------------------------------------


def plain_sqlite(db: Path, messages: int) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, queue_id INTEGER NOT NULL, "
        "visible_at INTEGER NOT NULL, body TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX messages_ready ON messages (queue_id, visible_at)")

    def now_ms() -> int:
        return int(time.time() * 1000)

    started = time.perf_counter()
    for start in range(0, messages, 10):
        now = now_ms()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO messages (queue_id, visible_at, body) VALUES (1, ?, ?)",
            [(now, body(i)) for i in range(start, min(messages, start + 10))],
        )
        conn.execute("COMMIT")
    insert_seconds = time.perf_counter() - started

    started = time.perf_counter()
    done = 0
    while done < messages:
        now = now_ms()
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT id, body FROM messages WHERE queue_id=1 AND visible_at<=? ORDER BY visible_at LIMIT 10",
            (now,),
        ).fetchall()
        conn.executemany("UPDATE messages SET visible_at=? WHERE id=?", [(now + 30_000, r[0]) for r in rows])
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM messages WHERE id=?", [(r[0],) for r in rows])
        conn.execute("COMMIT")
        done += len(rows)
        assert rows, "plain queue ran dry"
    receive_seconds = time.perf_counter() - started
    conn.close()
    inserts = messages / insert_seconds
    receives = messages / receive_seconds
    return {
        "messages": messages,
        "inserts_per_s": round(inserts, 1),
        "receive_and_delete_per_s": round(receives, 1),
        "cycle_per_s": round(1 / (1 / inserts + 1 / receives), 1),
    }


def plain_sqlite_grouped(db: Path, messages: int) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, queue_id INTEGER NOT NULL, "
        "visible_at INTEGER NOT NULL, body TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX messages_ready ON messages (queue_id, visible_at)")
    started = time.perf_counter()
    sent = deleted = commits = 0
    received: list[tuple[int]] = []
    while deleted < messages:
        now = int(time.time() * 1000)
        conn.execute("BEGIN IMMEDIATE")
        if sent < messages:
            batch = [(now, body(i)) for i in range(sent, min(messages, sent + 10))]
            conn.executemany("INSERT INTO messages (queue_id, visible_at, body) VALUES (1, ?, ?)", batch)
            sent += len(batch)
        rows = conn.execute(
            "SELECT id, body FROM messages WHERE queue_id=1 AND visible_at<=? ORDER BY visible_at LIMIT 10",
            (now,),
        ).fetchall()
        conn.executemany("UPDATE messages SET visible_at=? WHERE id=?", [(now + 30_000, r[0]) for r in rows])
        conn.executemany("DELETE FROM messages WHERE id=?", received)  # the ones received the round before
        conn.execute("COMMIT")
        commits += 1
        deleted += len(received)
        received = [(r[0],) for r in rows]
    seconds = time.perf_counter() - started
    conn.close()
    return {
        "messages": messages,
        "commits": commits,
        "cycle_per_s": round(messages / seconds, 1),
    }


# -- the run ----------------------------------------------------------------------------------------


def machine_info(root: Path) -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fs = "unknown"
    best = ""
    with open("/proc/mounts") as f:
        for line in f:
            _dev, mount, kind, *_ = line.split()
            if str(root.resolve()).startswith(mount) and len(mount) > len(best):
                best, fs = mount, kind
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "temp_dir_filesystem": fs,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


CONDITIONS: Conditions | None = None


def timed(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    progress(f"{name} ...")
    assert CONDITIONS is not None
    with CONDITIONS.side(name):
        result = fn()
    result["rss_mb_after"] = rss_mb()
    progress(f"{name}: {json.dumps(result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 messages and a 100,000 backlog")
    parser.add_argument("--messages", type=int, help="messages per cycle measurement (default 100,000)")
    parser.add_argument("--backlog", type=int, help="the large backlog (default 1,000,000)")
    parser.add_argument("--dir", type=Path, help="where the temporary databases go (default: system temp)")
    parser.add_argument("--save", action="store_true", help="also write bench/results/queue_engine-<UTC>.json")
    args = parser.parse_args()
    global CONDITIONS
    CONDITIONS = Conditions()
    messages = args.messages or (20_000 if args.quick else 100_000)
    backlog = args.backlog or (100_000 if args.quick else 1_000_000)
    root = args.dir or Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "machine": machine_info(root),
        "config": {
            "mode": "quick" if args.quick else "full",
            "messages": messages,
            "large_backlog": backlog,
            "body_bytes": BODY_BYTES,
            "durability": "normal",
        },
    }
    started = time.perf_counter()
    with fresh_db(root, "batched") as db:
        batched = timed("batched cycle", lambda: asyncio.run(batched_cycle(db, messages)))
    with fresh_db(root, "unbatched") as db:
        unbatched = timed("unbatched cycle", lambda: asyncio.run(unbatched_cycle(db, messages)))
    with fresh_db(root, "latency-small") as db:
        small = timed("receive latency, small backlog", lambda: asyncio.run(receive_latency(db, SMALL_BACKLOG)))
    with fresh_db(root, "latency-large") as db:
        large = timed("receive latency, large backlog", lambda: asyncio.run(receive_latency(db, backlog)))
    with fresh_db(root, "plain") as db:
        plain = timed("plain sqlite3 baseline, serial", lambda: plain_sqlite(db, messages))
    with fresh_db(root, "plain-grouped") as db:
        grouped = timed("plain sqlite3 baseline, grouped commit", lambda: plain_sqlite_grouped(db, messages))

    cycle = plain["cycle_per_s"]
    ceiling = grouped["cycle_per_s"]
    report.update(
        {
            "batched_cycle": batched,
            "unbatched_cycle": unbatched,
            "receive_latency": {
                "small_backlog": small,
                "large_backlog": large,
                "p99_large_over_small": round(large["p99_ms"] / small["p99_ms"], 2),
            },
            "plain_sqlite": plain,
            "plain_sqlite_grouped": grouped,
            "ratios_to_plain_cycle": {
                "batched": round(batched["messages_per_s"] / cycle, 3),
                "unbatched": round(unbatched["messages_per_s"] / cycle, 3),
            },
            "ratios_to_plain_grouped_cycle": {
                "batched": round(batched["messages_per_s"] / ceiling, 3),
                "unbatched": round(unbatched["messages_per_s"] / ceiling, 3),
            },
            "peak_rss_mb": peak_rss_mb(),
            "largest_db_size_mb": large["db_size_mb"],
            "total_seconds": round(time.perf_counter() - started, 1),
        }
    )
    report["conditions"] = CONDITIONS.report()
    report["command"] = " ".join(sys.argv)
    text = json.dumps(report, indent=2) + "\n"
    sys.stdout.write(text)
    if args.save:
        path = Path(__file__).parent / "results" / f"queue_engine-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
        path.write_text(text)
        progress(f"saved {path}")
    CONDITIONS.say()


if __name__ == "__main__":
    main()
