"""Benchmark of SNS publishing with fan-out: publishes per second to a topic with 1 and with 10 subscribed
queues, in-process on the engine and over HTTP against `scte queue serve`.

    python bench/topics.py [--quick] [--publishes N] [--dir DIR]

Prints one JSON document on stdout, progress on stderr. For each fan-out (1 and 10 queues, raw delivery,
200-byte messages with one message attribute), each on a fresh database (and, over HTTP, a fresh server):

- engine, single: `engine.topics.publish` from 32 concurrent tasks;
- engine, batch: `engine.topics.publish_batch` of 10 entries from 8 concurrent tasks;
- http, single: `Action=Publish` form POSTs from 32 concurrent keep-alive connections (aiohttp, which
  aiobotocore brings; unsigned requests, routed to SNS by `Version=2010-03-31`);
- http, batch: `Action=PublishBatch` of 10 from 8 connections.

Each result gives publishes/s and deliveries/s (publishes times fan-out: one queue message each), and the
run checks that every queue holds exactly the messages published.
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
from typing import Any

import aiohttp

from scte.queue import Engine, EngineConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conditions import Conditions
from queue_engine import fresh_db, machine_info, peak_rss_mb, progress

BODY_BYTES = 200
FANOUTS = (1, 10)
SINGLE_TASKS = 32
BATCH_TASKS = 8
BATCH = 10
ATTRIBUTES = {"kind": {"DataType": "String", "StringValue": "bench"}}


def body(i: int) -> str:
    head = f"{i:012d}."
    return head + "x" * (BODY_BYTES - len(head))


async def _split(total: int, tasks: int, work: Callable[[int, int], Awaitable[None]]) -> float:
    """Run `work(start, count)` on `tasks` concurrent slices of [0, total); the wall time in seconds."""
    per = total // tasks
    started = time.perf_counter()
    await asyncio.gather(*(work(t * per, per) for t in range(tasks)))
    return time.perf_counter() - started


def _result(publishes: int, seconds: float, fanout: int, concurrency: int, batch: int) -> dict[str, Any]:
    return {
        "publishes": publishes,
        "fanout": fanout,
        "concurrency": concurrency,
        "entries_per_call": batch,
        "seconds": round(seconds, 3),
        "publishes_per_s": round(publishes / seconds, 1),
        "deliveries_per_s": round(publishes * fanout / seconds, 1),
    }


async def _setup(engine: Engine, fanout: int) -> str:
    arn = await engine.topics.create_topic("bench")
    for q in range(fanout):
        await engine.create_queue(f"bench-{q}")
        await engine.topics.subscribe(arn, "sqs", engine.queue_arn(f"bench-{q}"), {"RawMessageDelivery": "true"})
    return arn


async def _check(engine: Engine, fanout: int, publishes: int) -> None:
    for q in range(fanout):
        attributes = await engine.get_queue_attributes(f"bench-{q}", ["ApproximateNumberOfMessages"])
        held = int(attributes["ApproximateNumberOfMessages"])
        assert held == publishes, f"queue bench-{q} holds {held} messages, {publishes} were published"


# -- in-process -------------------------------------------------------------------------------------------


async def engine_run(db: Path, fanout: int, publishes: int, batch: bool) -> dict[str, Any]:
    async with Engine(EngineConfig(path=db)) as engine:
        arn = await _setup(engine, fanout)
        tasks = BATCH_TASKS if batch else SINGLE_TASKS
        total = publishes - publishes % (tasks * (BATCH if batch else 1))

        async def single(start: int, count: int) -> None:
            for i in range(start, start + count):
                await engine.topics.publish(arn, body(i), message_attributes=ATTRIBUTES)

        async def batched(start: int, count: int) -> None:
            for first in range(start, start + count, BATCH):
                entries = [
                    {"Id": str(n), "Message": body(first + n), "MessageAttributes": ATTRIBUTES} for n in range(BATCH)
                ]
                result = await engine.topics.publish_batch(arn, entries)
                assert not result["Failed"], result["Failed"]

        seconds = await _split(total, tasks, batched if batch else single)
        await _check(engine, fanout, total)
    return _result(total, seconds, fanout, tasks, BATCH if batch else 1)


# -- over HTTP --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCTE_QUEUE_")}
    command = [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port), "--data", str(data)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/health", timeout=1) as r:
                if r.status == 200:
                    return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the server did not start") from None
            time.sleep(0.05)


def _publish_form(arn: str, i: int) -> dict[str, str]:
    return {
        "Action": "Publish",
        "Version": "2010-03-31",
        "TopicArn": arn,
        "Message": body(i),
        "MessageAttributes.entry.1.Name": "kind",
        "MessageAttributes.entry.1.Value.DataType": "String",
        "MessageAttributes.entry.1.Value.StringValue": "bench",
    }


def _batch_form(arn: str, first: int) -> dict[str, str]:
    form = {"Action": "PublishBatch", "Version": "2010-03-31", "TopicArn": arn}
    for n in range(BATCH):
        prefix = f"PublishBatchRequestEntries.member.{n + 1}."
        form |= {
            prefix + "Id": str(n),
            prefix + "Message": body(first + n),
            prefix + "MessageAttributes.entry.1.Name": "kind",
            prefix + "MessageAttributes.entry.1.Value.DataType": "String",
            prefix + "MessageAttributes.entry.1.Value.StringValue": "bench",
        }
    return form


async def http_run(data: Path, fanout: int, publishes: int, batch: bool) -> dict[str, Any]:
    # The topic and queues are made on the engine first (the server then opens the same file).
    async with Engine(EngineConfig(path=data / "broker.db")) as engine:
        arn = await _setup(engine, fanout)
    proc, endpoint = _start_server(data)
    try:
        tasks = BATCH_TASKS if batch else SINGLE_TASKS
        total = publishes - publishes % (tasks * (BATCH if batch else 1))
        connector = aiohttp.TCPConnector(limit=tasks)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post(form: dict[str, str]) -> str:
                async with session.post(endpoint + "/", data=form) as response:
                    text = await response.text()
                    assert response.status == 200, text
                    return text

            async def single(start: int, count: int) -> None:
                for i in range(start, start + count):
                    await post(_publish_form(arn, i))

            async def batched(start: int, count: int) -> None:
                for first in range(start, start + count, BATCH):
                    text = await post(_batch_form(arn, first))
                    assert "<Code>" not in text, text  # no failed entry

            await post({"Action": "ListTopics", "Version": "2010-03-31"})  # warm the connection
            seconds = await _split(total, tasks, batched if batch else single)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    async with Engine(EngineConfig(path=data / "broker.db")) as engine:
        await _check(engine, fanout, total)
    return _result(total, seconds, fanout, tasks, BATCH if batch else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 publishes per measurement")
    parser.add_argument("--publishes", type=int, help="publishes per measurement (default 20,000)")
    parser.add_argument("--dir", type=Path, help="where the temporary databases go (default: system temp)")
    args = parser.parse_args()
    conditions = Conditions()
    publishes = args.publishes or (2_000 if args.quick else 20_000)
    root = args.dir or Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "machine": machine_info(root),
        "config": {
            "mode": "quick" if args.quick else "full",
            "publishes": publishes,
            "body_bytes": BODY_BYTES,
            "fanouts": list(FANOUTS),
            "delivery": "sqs, raw",
            "durability": "normal",
        },
    }
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for fanout in FANOUTS:
        for where in ("engine", "http"):
            for batch in (False, True):
                name = f"{where}_{'batch' if batch else 'single'}_fanout_{fanout}"
                progress(f"{name} ...")
                with fresh_db(root, name) as db, conditions.side(name):
                    if where == "engine":
                        result = asyncio.run(engine_run(db, fanout, publishes, batch))
                    else:
                        db.parent.mkdir(parents=True, exist_ok=True)
                        result = asyncio.run(http_run(db.parent, fanout, publishes, batch))
                progress(f"{name}: {json.dumps(result)}")
                results[name] = result
    report["results"] = results
    report["peak_rss_mb"] = peak_rss_mb()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["conditions"] = conditions.report()
    report["command"] = " ".join(sys.argv)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    conditions.say()


if __name__ == "__main__":
    main()
