"""Activity on a real database and broker: buffered batch writes, reloads collapsed, business events
in the stream, redeliveries adding nothing, and the stream readable by its member or staff only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scte.contracts.activity import ActivityRecorded
from scte.contracts.commerce import OrderLine, OrderPaid
from scte.contracts.learning import ExamPassed

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def view(i: int, member: str = "m1", path: str | None = None, at: datetime | None = None) -> ActivityRecorded:
    return ActivityRecorded(
        activity_id=f"a{i}",
        member_id=member,
        kind="page_view",
        occurred_at=at or NOW + timedelta(minutes=i),
        path=path or f"/courses/{i}",
    )


async def stream(service: Any, member: str = "m1", **params: Any) -> list[dict[str, Any]]:
    r = await service.client.get(f"/members/{member}/activity", params=params, headers=service.auth(member))
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_many_entries_are_written_in_few_batches(service: Any) -> None:
    for i in range(120):
        await service.publish(view(i), topic="activity")

    async def all_there() -> bool:
        return len(await stream(service, limit=500)) == 120

    await service.eventually(all_there)
    writer = service.runtime.context.extras["writer"]
    assert writer.written == 120 and writer.batches < 20
    latest = await stream(service, limit=2)
    assert [e["activity_id"] for e in latest] == ["a119", "a118"]
    older = await stream(service, limit=2, before=latest[-1]["occurred_at"])
    assert [e["activity_id"] for e in older] == ["a117", "a116"]


async def test_reloads_collapse_and_redeliveries_add_nothing(service: Any) -> None:
    first = view(1, path="/home", at=NOW)
    envelope = await service.publish(first, topic="activity")
    await service.publish(view(2, path="/home", at=NOW + timedelta(seconds=10)), topic="activity")  # a reload
    await service.publish(view(3, path="/home", at=NOW + timedelta(seconds=45)), topic="activity")
    await service.eventually(lambda: _written(service, 2))
    await service.redeliver(first, envelope)
    consumer = service.runtime.context.extras["consumer"]
    await service.eventually(lambda: _handled(consumer, 4))
    assert [e["activity_id"] for e in await stream(service)] == ["a3", "a1"]


async def _written(service: Any, n: int) -> bool:
    return len(await stream(service)) >= n


async def _handled(consumer: Any, n: int) -> bool:
    return bool(consumer.stats.processed + consumer.stats.duplicates >= n)


async def test_business_events_enter_the_stream_payments_do_not(service: Any) -> None:
    await service.publish(
        ExamPassed(attempt_id="x", member_id="m1", program="BPI", score_percent="80.00", taken_at=NOW),
        topic="learning",
    )
    await service.publish(
        OrderPaid(
            order_id="o",
            member_id="m1",
            lines=(OrderLine(kind="dues", reference="m1", unit_price_cents=1),),
            total_cents=1,
            currency="USD",
            payment_method="card",
            paid_at=NOW,
        ),
        topic="commerce",
    )
    await service.eventually(lambda: _written(service, 1))
    entries = await stream(service)
    assert [(e["kind"], e["summary"]) for e in entries] == [("milestone", "Passed an exam")]


async def test_access_and_bad_input(service: Any) -> None:
    assert (await service.client.get("/members/m1/activity")).status_code == 401
    r = await service.client.get("/members/m1/activity", headers=service.auth("m2"))
    assert r.status_code == 403 and r.json()["message"]
    assert (await service.client.get("/members/m1/activity", headers=service.staff())).status_code == 200
    r = await service.client.get("/members/m1/activity?limit=0", headers=service.auth("m1"))
    assert r.status_code == 422 and "limit" in r.json()["message"]
    r = await service.client.get("/members/m1/activity?before=yesterday", headers=service.auth("m1"))
    assert r.status_code == 422


async def test_health_reports_its_own_consumer(service: Any) -> None:
    """The console counts a queue's consumers from each service's /health: activity runs its consumer
    itself (no inbox), and reports it all the same."""

    async def reported() -> dict[str, Any]:
        body: dict[str, Any] = (await service.client.get("/health")).json()
        return body if body.get("consumer") else {}

    body = await service.eventually(reported)
    assert body["consumer"]["queue"] == "activity" and body["status"] == "ok"
