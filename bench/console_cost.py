"""What the operations console costs the broker: the batched cycle's throughput with the console open
(its live refresh running) against closed, in the same run, on the same broker. Goal: at most 1% slower.

    python bench/console_cost.py [--seconds S] [--rounds R] [--connections C] [--viewers V]

One `scte queue serve --auth strict` (as `scte up` runs it) for the whole run, with the platform's shape
around the cycle's queues: `--idle-queues` more queues and `--topics` topics subscribed to them, so that
the console's reads (ListQueues, GetQueueUrl and GetQueueAttributes per queue, ListTopics,
ListSubscriptions, `/metrics` and its gauges per queue) cost what they cost on a real install.

The batched cycle is bench/broker_auth.py's (b): C keep-alive connections, SendMessageBatch of 10,
ReceiveMessage of up to 10, DeleteMessageBatch, signed by a service's key, for S seconds per side.
Three sides, alternating, R rounds each:

- `none`: nothing but the cycle (no gateway);
- `closed`: the gateway's sampler only (`scte.web.console_rates`: one `/metrics` scrape every 10 s,
  which runs whether or not anyone looks);
- `open`: the sampler and V staff with `/console` open: every 5 s (htmx) what one refresh of
  `/console/live` asks the broker (`scte.web.console._overview`: one `/metrics`, the queues with their
  attributes, the topics with their subscriptions), through the same `BrokerAdmin` with the admin key.

The services' `/health` calls of a refresh do not reach the broker and are left out. Reported per side:
the median of the rounds (messages/s, the broker's CPU per message) and open's and closed's change against
the side before them. Prints one JSON document on stdout (with `conditions`, bench/conditions.py),
progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from broker_auth import ADMIN, MODES, REGION, broker, make_queues, measure
from conditions import Conditions
from queue_server import progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LIVE_SECONDS = 5.0
SAMPLE_SECONDS = 10.0
SIDES = ("none", "closed", "open")


def platform_shape(endpoint: str, idle_queues: int, topics: int) -> None:
    """Idle queues (half of them DLQs, the others naming one in their RedrivePolicy) and topics each
    subscribed by a few of them, as the platform has."""
    import boto3

    kw = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": ADMIN[0],
        "aws_secret_access_key": ADMIN[1],
    }
    sqs, sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)
    arns = []
    for i in range(idle_queues // 2):
        dlq = sqs.create_queue(QueueName=f"svc{i}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=f"svc{i}",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        arns.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    for t in range(topics):
        topic = sns.create_topic(Name=f"svc{t}")["TopicArn"]
        for arn in arns[t % max(1, len(arns)) :][:4]:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})


async def _console(endpoint: str, key_file: str, viewers: int, seconds: float, counts: Any, ready: Any) -> None:
    from scte.web.broker_admin import BrokerAdmin

    admins = [BrokerAdmin(endpoint, Path(key_file)) for _ in range(max(1, viewers))]
    for admin in admins:  # clients made and connections open before the measured cycle starts
        await admin.queues(await admin.metrics())
    ready.set()
    deadline = time.monotonic() + seconds

    async def sampler(admin: BrokerAdmin) -> None:
        while time.monotonic() < deadline:
            await admin.metrics()
            counts["scrapes"] += 1
            await asyncio.sleep(SAMPLE_SECONDS)

    async def viewer(admin: BrokerAdmin, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < deadline:
            metrics = await admin.metrics()
            await asyncio.gather(admin.queues(metrics), admin.topics(metrics))
            counts["refreshes"] += 1
            await asyncio.sleep(LIVE_SECONDS)

    tasks = [sampler(admins[0])]
    if viewers:
        tasks += [viewer(a, LIVE_SECONDS * i / viewers) for i, a in enumerate(admins)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for a in admins:
            await a.close()


def console_process(endpoint: str, key_file: str, viewers: int, seconds: float, out: Any, ready: Any) -> None:
    counts = {"scrapes": 0, "refreshes": 0}
    asyncio.run(_console(endpoint, key_file, viewers, seconds, counts, ready))
    out.put(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of cycle per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8, help="the cycle's keep-alive connections")
    parser.add_argument("--viewers", type=int, default=1, help="staff with the console open")
    parser.add_argument("--idle-queues", type=int, default=20, help="the platform's other queues (half DLQs)")
    parser.add_argument("--topics", type=int, default=10)
    args = parser.parse_args()
    conditions = Conditions()
    report: dict[str, Any] = {k: v for k, v in vars(args).items()}
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    console_work: list[dict[str, int]] = []
    ctx = mp.get_context("spawn")
    with broker(*MODES["strict"]) as (endpoint, pid), tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "admin.json"
        key_file.write_text(json.dumps({"aws_access_key_id": ADMIN[0], "aws_secret_access_key": ADMIN[1]}))
        key_file.chmod(0o600)
        platform_shape(endpoint, args.idle_queues, args.topics)
        queues = make_queues(endpoint, args.connections)
        for round_ in range(args.rounds):
            for side in SIDES:
                console = None
                out = ctx.Queue()
                if side != "none":
                    viewers = args.viewers if side == "open" else 0
                    ready = ctx.Event()
                    console = ctx.Process(
                        target=console_process,
                        args=(endpoint, str(key_file), viewers, args.seconds + 5, out, ready),
                    )
                    console.start()
                    if not ready.wait(120):  # its imports and first calls are not the console's running cost
                        raise RuntimeError("the console process did not start")
                extra = [psutil.Process(pid)] + ([psutil.Process(console.pid)] if console and console.pid else [])
                with conditions.side(f"{side}_{round_ + 1}", extra_processes=extra):
                    result = measure(endpoint, pid, queues, args.seconds)
                if console is not None:
                    console_work.append({"side": side, **out.get(timeout=60)})  # type: ignore[dict-item]
                    console.join(30)
                runs[side].append(result)
                progress(
                    f"round {round_ + 1} {side}: {result['messages_per_s']:.0f} msg/s, "
                    f"{result['server_cpu_us_per_message']:.1f} us broker CPU per message"
                )
    summary: dict[str, Any] = {}
    for side in SIDES:
        summary[side] = {
            key: round(statistics.median(r[key] for r in runs[side]), 1)
            for key in ("messages_per_s", "server_cpu_us_per_message")
        }
        summary[side]["rounds"] = [{k: round(v, 1) for k, v in r.items()} for r in runs[side]]
    for side, base in (("closed", "none"), ("open", "closed")):
        summary[f"{side}_vs_{base}"] = {
            f"{key}_change_percent": round(100 * (summary[side][key] / summary[base][key] - 1), 2)
            for key in ("messages_per_s", "server_cpu_us_per_message")
        }
    goal = -summary["open_vs_closed"]["messages_per_s_change_percent"] <= 1.0
    report.update(summary)
    report["console_work"] = console_work
    report["goal_open_at_most_1_percent_slower"] = goal
    report["conditions"] = conditions.report()
    conditions.say()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
