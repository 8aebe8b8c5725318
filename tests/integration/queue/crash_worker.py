"""The process that test_crash.py kills: an engine under send/receive/delete load, logging every ack.

    python crash_worker.py DB LOG --round N --durability normal|full --seed S

It opens the engine on DB (continuing from whatever a killed predecessor left), creates the queue if
needed, prints `ready` on stdout and then runs producers and consumers until it is killed. After each
call the engine acknowledged, and only then, it appends to LOG with one os.write:

    S <body>   the send of <body> was acknowledged
    d <body>   a delete of <body> is about to be issued (written before the call: a delete that
               committed but was not acknowledged when the kill came may or may not have happened)
    D <body>   the delete of <body> was acknowledged while its receipt handle was surely current
    U <body>   a delete was acknowledged, but so late that the message may have become visible again
               and been received by another consumer: the engine then deletes nothing, as on AWS,
               so this line promises nothing (the test ignores it)

Bodies are unique across rounds: `r<round>.<producer>.<sequence>` plus padding.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from typing import Any

from scte.queue import Engine, EngineConfig

QUEUE = "crash"
VISIBILITY_TIMEOUT = 1  # seconds: messages in flight at a kill come back in a later round
# A delete acknowledged within this long after its receive was issued ran while the handle was current.
SAFE_DELETE_SECONDS = VISIBILITY_TIMEOUT - 0.05
PADDING = "x" * 64
MAX_RUN_SECONDS = 60.0  # a worker nobody killed (the test died) stops by itself


class Log:
    """Append-only acknowledgement log; one os.write per acknowledged call."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, kind: str, bodies: list[str]) -> None:
        if bodies:
            os.write(self.fd, "".join(f"{kind} {b}\n" for b in bodies).encode())


def body_of(round_no: int, producer: int, seq: int) -> str:
    return f"r{round_no}.{producer}.{seq}.{PADDING}"


async def single_producer(engine: Engine, log: Log, round_no: int, producer: int) -> None:
    seq = 0
    while True:
        body = body_of(round_no, producer, seq)
        seq += 1
        await engine.send_message(QUEUE, body)
        log.write("S", [body])


async def batch_producer(engine: Engine, log: Log, round_no: int, producer: int, rng: random.Random) -> None:
    seq = 0
    while True:
        size = rng.randint(1, 10)
        entries = []
        for i in range(size):
            entries.append({"Id": str(i), "MessageBody": body_of(round_no, producer, seq)})
            seq += 1
        result = await engine.send_message_batch(QUEUE, entries)
        by_id = {e["Id"]: e["MessageBody"] for e in entries}
        log.write("S", [by_id[ok["Id"]] for ok in result["Successful"]])


async def consumer(engine: Engine, log: Log, batch: bool, rng: random.Random) -> None:
    while True:
        issued = time.time()
        messages = await engine.receive_message(QUEUE, max_number=rng.randint(1, 10), wait_time_seconds=1)
        if not messages:
            continue
        if rng.random() < 0.05:
            continue  # abandon them: they come back after the visibility timeout
        log.write("d", [m["Body"] for m in messages])
        if batch:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            result = await engine.delete_message_batch(QUEUE, entries)
            acked = [messages[int(ok["Id"])]["Body"] for ok in result["Successful"]]
            safe = time.time() - issued < SAFE_DELETE_SECONDS
            log.write("D" if safe else "U", acked)
        else:
            for message in messages:
                await engine.delete_message(QUEUE, message["ReceiptHandle"])
                safe = time.time() - issued < SAFE_DELETE_SECONDS
                log.write("D" if safe else "U", [message["Body"]])


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    log = Log(args.log)
    async with Engine(EngineConfig(path=args.db, durability=args.durability)) as engine:
        await engine.create_queue(QUEUE, {"VisibilityTimeout": str(VISIBILITY_TIMEOUT)})
        tasks: list[asyncio.Task[Any]] = []
        for p in range(2):
            tasks.append(asyncio.create_task(single_producer(engine, log, args.round, p)))
        for p in range(2, 5):
            tasks.append(asyncio.create_task(batch_producer(engine, log, args.round, p, random.Random(rng.random()))))
        for c in range(10):
            tasks.append(asyncio.create_task(consumer(engine, log, c % 2 == 0, random.Random(rng.random()))))
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
