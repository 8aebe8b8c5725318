"""The comparison for bench/bus.py: FastStream with RabbitMQ doing the same work.

What a Python team would otherwise pick: a durable queue, persistent messages published with
publisher confirms, the message acknowledged after the handler returns (FastStream's default ack
policy), the handler doing what our consumer and handler do in SQLite through the same engine: the
inbox check, the effect row and the inbox row, in one transaction.

The subscriber's channel has `prefetch_count` = our consumer's concurrency: aio-pika runs a task per
delivered message, so the prefetch is also the number of handlers at work. FastStream 0.7.8 has no
batch subscriber for RabbitMQ; `grouped=True` is what a user would write instead: each handler hands
its event to a `Group`, which commits up to 10 events in one transaction (each in a savepoint, as our
consumer's `handle_many`) and lets the handlers return (and so acknowledge) once that commit is done.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scte.ids import new_uuid7

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"

Work = Callable[[AsyncSession, str, int, float], Awaitable[None]]


class Group:
    """Commits the events handed to it in groups of up to `most`, one transaction per group."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], work: Work, most: int = 10) -> None:
        self.sessionmaker, self.work, self.most = sessionmaker, work, most
        self.pending: list[tuple[tuple[str, int, float], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def submit(self, event_id: str, seq: int, latency: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(((event_id, seq, latency), done))
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # the other deliveries of the same read join the group
            while self.pending:
                group, self.pending = self.pending[: self.most], self.pending[self.most :]
                self.transactions += 1
                try:
                    async with self.sessionmaker() as session, session.begin():
                        for args, _done in group:
                            async with session.begin_nested():
                                await self.work(session, *args)
                except Exception as exc:
                    for _args, waiting in group:
                        waiting.set_exception(exc)
                else:
                    for _args, waiting in group:
                        waiting.set_result(None)
        finally:
            self.flusher = None


async def run_faststream(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Work,
    *,
    events: int,
    publishers: int,
    latency_samples: int,
    prefetch: int,
    grouped: bool = False,
) -> dict[str, Any]:
    """Saturated throughput over `events`, then unloaded latency over `latency_samples`, one at a time."""
    from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

    broker = RabbitBroker(RABBIT_URL, logger=None)
    queue = RabbitQueue(f"bench-{uuid.uuid4().hex[:8]}", durable=True)
    latencies: list[float] = []
    done = asyncio.Event()
    state = {"handled": 0, "target": 0}
    group = Group(sessionmaker, work) if grouped else None

    @broker.subscriber(queue, channel=Channel(prefetch_count=prefetch))
    async def handle(body: dict[str, Any]) -> None:
        latency = time.perf_counter() - body["t0"]  # at the handler's start, as ours
        if group is not None:
            await group.submit(body["id"], body["seq"], latency)
        else:
            async with sessionmaker() as session, session.begin():
                await work(session, body["id"], body["seq"], latency)
        latencies.append(latency)
        state["handled"] += 1
        if state["handled"] >= state["target"]:
            done.set()

    async def publish(seq: int) -> None:
        await broker.publish(
            # The same id generator as our events (time-ordered UUIDv7): the handler's inbox and effect
            # rows are keyed by it, and a random key would cost its inserts more (scte.ids).
            {"id": new_uuid7(), "seq": seq, "t0": time.perf_counter()},
            queue=queue,
            persist=True,
        )

    await broker.start()
    try:
        # Saturated: every publisher sends its share as fast as confirms come back.
        state.update(handled=0, target=events)
        started = time.perf_counter()
        cpu_started = time.process_time()

        async def producer(first: int) -> None:
            for seq in range(first, events, publishers):
                await publish(seq)

        await asyncio.gather(*(producer(i) for i in range(publishers)))
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        saturated = sorted(latencies)
        # Unloaded: one event in flight at a time.
        latencies.clear()
        for seq in range(latency_samples):
            done.clear()
            state.update(handled=0, target=1)
            await publish(events + seq)
            await asyncio.wait_for(done.wait(), 30)
        unloaded = sorted(latencies)
        await broker.purge_queue(queue.name) if hasattr(broker, "purge_queue") else None
    finally:
        await broker.stop()
    return {
        "events": events,
        "seconds": elapsed,
        "saturated": saturated,
        "unloaded": unloaded,
        "cpu_seconds": cpu,
        "group_transactions": group.transactions if group is not None else None,
    }
