"""A consumer process of the chaos test: counts each event's effect in PostgreSQL, inside the inbox
transaction. Run as `python chaos_worker.py ENDPOINT POSTGRES_URL SCHEMA`; SIGTERM stops it gracefully,
the test mostly uses SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).parent))

from chaos_model import CONTRACTS, QUEUE, TOPOLOGY, Counted

from scte.bus.consumer import Consumer, RetryPolicy, run_consumers
from scte.bus.envelope import Envelope
from scte.bus.transports.aws import AwsTransport


async def count(event: Counted, session: AsyncSession, envelope: Envelope) -> None:
    await session.execute(
        text(
            "INSERT INTO effects (event_id, seq, count) VALUES (:id, :seq, 1) "
            "ON CONFLICT (event_id) DO UPDATE SET count = effects.count + 1"
        ),
        {"id": envelope.id, "seq": event.seq},
    )


async def main(endpoint: str, url: str, schema: str) -> None:
    db = create_async_engine(url, pool_size=20, connect_args={"server_settings": {"search_path": schema}})
    transport = AwsTransport(endpoint_url=endpoint, topology=TOPOLOGY, connect_timeout=1, max_attempts=1)
    consumer = Consumer(
        transport,
        TOPOLOGY,
        CONTRACTS,
        queue=QUEUE,
        handlers={Counted: count},
        sessionmaker=async_sessionmaker(db, expire_on_commit=False),
        concurrency=20,
        wait_seconds=2,
        retry=RetryPolicy(base_seconds=1, cap_seconds=2),
    )
    try:
        await run_consumers([consumer], grace_seconds=5)
    finally:
        await transport.close()
        await db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR, format="worker %(process)d %(levelname)s %(message)s")
    asyncio.run(main(*sys.argv[1:4]))
