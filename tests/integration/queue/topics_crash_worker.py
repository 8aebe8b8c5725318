"""The process that test_topics_crash.py kills: an engine under a storm of SNS publishes, logging every ack.

    python topics_crash_worker.py DB LOG --round N --durability normal|full --seed S

It opens the engine on DB (continuing from whatever a killed predecessor left), creates the topic, its
three queues and subscriptions if needed (all idempotent), prints `ready` on stdout and then publishes
(Publish and PublishBatch, from several tasks) until it is killed. After each call the engine
acknowledged, and only then, it appends one line per acknowledged message to LOG with one os.write:

    P <id> <kind>   the publish of message <id> (attribute kind=<kind>, even or odd) was acknowledged

Message ids are unique across rounds: `r<round>.<producer>.<sequence>`; the id is the message body.
Subscriptions: `all-raw` (raw delivery), `all-envelope` (SNS envelope) and `even-only` (envelope, filter
policy `{"kind": ["even"]}` on the message attributes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from typing import Any

from scte.queue import Engine, EngineConfig

TOPIC = "storm"
QUEUES = {
    "all-raw": {"RawMessageDelivery": "true"},
    "all-envelope": {},
    "even-only": {"FilterPolicy": '{"kind": ["even"]}'},
}
MAX_RUN_SECONDS = 60.0  # a worker nobody killed (the test died) stops by itself


class Log:
    """Append-only acknowledgement log; one os.write per acknowledged call."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, acked: list[tuple[str, str]]) -> None:
        if acked:
            os.write(self.fd, "".join(f"P {i} {k}\n" for i, k in acked).encode())


def kind_of(seq: int) -> str:
    return "even" if seq % 2 == 0 else "odd"


def attributes(kind: str) -> dict[str, dict[str, str]]:
    return {"kind": {"DataType": "String", "StringValue": kind}}


async def single_publisher(engine: Engine, arn: str, log: Log, round_no: int, producer: int) -> None:
    seq = 0
    while True:
        message_id, kind = f"r{round_no}.{producer}.{seq}", kind_of(seq)
        seq += 1
        await engine.topics.publish(arn, message_id, message_attributes=attributes(kind))
        log.write([(message_id, kind)])


async def batch_publisher(engine: Engine, arn: str, log: Log, round_no: int, producer: int, rng: random.Random) -> None:
    seq = 0
    while True:
        entries: list[dict[str, Any]] = []
        for n in range(rng.randint(1, 10)):
            kind = kind_of(seq)
            entries.append(
                {"Id": str(n), "Message": f"r{round_no}.{producer}.{seq}", "MessageAttributes": attributes(kind)}
            )
            seq += 1
        result = await engine.topics.publish_batch(arn, entries)
        assert not result["Failed"], result["Failed"]
        by_id = {e["Id"]: e for e in entries}
        log.write(
            [
                (by_id[ok["Id"]]["Message"], by_id[ok["Id"]]["MessageAttributes"]["kind"]["StringValue"])
                for ok in result["Successful"]
            ]
        )


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    log = Log(args.log)
    async with Engine(EngineConfig(path=args.db, durability=args.durability)) as engine:
        arn = await engine.topics.create_topic(TOPIC)
        for queue, sub_attributes in QUEUES.items():
            await engine.create_queue(queue)
            await engine.topics.subscribe(arn, "sqs", engine.queue_arn(queue), sub_attributes)
        tasks: list[asyncio.Task[Any]] = []
        for p in range(3):
            tasks.append(asyncio.create_task(single_publisher(engine, arn, log, args.round, p)))
        for p in range(3, 6):
            tasks.append(
                asyncio.create_task(batch_publisher(engine, arn, log, args.round, p, random.Random(rng.random())))
            )
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        done, _pending = await asyncio.wait(tasks, timeout=MAX_RUN_SECONDS, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a task that failed makes the worker fail loudly
        os._exit(3)  # not killed in time: leave as abruptly as a kill would


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("log")
    parser.add_argument("--round", type=int, required=True)
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
