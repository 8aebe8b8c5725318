"""Commerce, learning and certification as real runtimes (API, consumer, relay, scheduler) on one
in-process broker: an exam fee paid by card becomes an attempt, a passing attempt a certification,
and a completed course credits units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scte.bus.topology import Topology
from scte.bus.transports.inprocess import InProcessTransport
from scte.kit.auth import TokenIssuer
from scte.kit.clock import FixedClock
from scte.kit.testing import api_client, bearer, issuer
from scte.kit.testing import test_settings as make_settings
from scte.platform import TOPICS
from scte.queue.engine import Engine, EngineConfig
from scte.services.certification import service as certification
from scte.services.commerce import service as commerce
from scte.services.learning import service as learning

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the flow did not complete in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[dict[str, httpx.AsyncClient], TokenIssuer]]:
    modules = {"commerce": commerce, "learning": learning, "certification": certification}
    topology = Topology(topics=TOPICS, queues=tuple(m.QUEUE for m in modules.values()))
    engine = await Engine(EngineConfig(path=tmp_path / "broker.db")).start()
    transport = InProcessTransport(engine, topology=topology)
    await transport.provision(topology)
    settings = make_settings(tmp_path, provision_on_start=False)
    tokens = issuer(settings)
    clock = FixedClock(datetime.now(UTC))
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        async with AsyncExitStack() as stack:
            for name, module in modules.items():
                runtime = module.build_runtime(settings, clock=clock, transport=transport)
                await stack.enter_async_context(runtime)
                clients[name] = await stack.enter_async_context(api_client(runtime))
            yield clients, tokens
    finally:
        await engine.close()


async def test_exam_fee_to_certification_and_course_to_units(
    platform: tuple[dict[str, httpx.AsyncClient], TokenIssuer],
) -> None:
    clients, tokens = platform
    me = bearer(tokens.issue("m1"))
    staff = bearer(tokens.issue("proctor", ("member", "staff")))
    order = await clients["commerce"].post(
        "/orders",
        json={
            "lines": [{"kind": "exam_fee", "reference": "BPI"}, {"kind": "course_seat", "reference": "docsis-40-fdx"}]
        },
        headers=me,
    )
    assert order.status_code == 201, order.text
    paid = await clients["commerce"].post(f"/orders/{order.json()['order_id']}/pay", json={"card": CARD}, headers=me)
    assert paid.status_code == 200, paid.text

    async def fee_granted() -> bool:
        transcript = (await clients["learning"].get("/members/m1/transcript", headers=me)).json()
        return transcript["exam_attempts_available"].get("BPI") == 1 and bool(transcript["enrollments"])

    await eventually(fee_granted)
    attempt = await clients["learning"].post(
        "/exams/BPI/attempts", json={"member_id": "m1", "correct": 45}, headers=staff
    )
    assert attempt.status_code == 201 and attempt.json()["passed"] is True

    async def certified() -> list[dict[str, Any]]:
        return list((await clients["certification"].get("/members/m1/certifications", headers=me)).json())

    [cert] = await eventually(certified)
    assert (cert["program"], cert["status"], cert["designation"]) == ("BPI", "active", "BPI")

    done = await clients["learning"].post(
        "/completions", json={"member_id": "m1", "course_id": "docsis-40-fdx"}, headers=staff
    )
    assert done.status_code == 201, done.text

    async def credited() -> dict[str, Any] | None:
        units = (await clients["certification"].get("/members/m1/units", headers=me)).json()
        return units if units["total_units"] == 5 else None

    units = await eventually(credited)
    assert units["credits"][0]["credit_id"] == f"course:{done.json()['completion_id']}"
