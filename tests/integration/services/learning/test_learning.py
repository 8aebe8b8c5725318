"""Learning on its real runtime and on the bus harness (SQLite and PostgreSQL): paid seats and exam
fees, completions, attempts at the 76% pass mark, transcripts, and who may do what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from b_support import KINDS, Running, assert_error, harness, running, transaction
from sqlalchemy import select

from scte.bus.testing import BusHarness
from scte.contracts.commerce import OrderLine, OrderPaid
from scte.contracts.learning import CourseCompleted, ExamFailed, ExamPassed
from scte.services.learning import db
from scte.services.learning.handlers import HANDLERS, complete_course, upsert_course, upsert_exam
from scte.services.learning.service import QUEUE, build_runtime

START = datetime(2026, 3, 2, 12, tzinfo=UTC)


def paid(order_id: str, *lines: tuple[str, str], member: str = "m1", at: datetime = START) -> OrderPaid:
    return OrderPaid(
        order_id=order_id,
        member_id=member,
        lines=tuple(OrderLine(kind=k, reference=r, unit_price_cents=100) for k, r in lines),  # type: ignore[arg-type]
        total_cents=100 * len(lines),
        currency="USD",
        payment_method="card",
        paid_at=at,
    )


# --- handlers on the harness ----------------------------------------------------------------------


@pytest.fixture(params=KINDS)
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    async with harness(
        request.param, tmp_path, service="learning", metadata=db.metadata, queue=QUEUE, handlers=HANDLERS
    ) as b:
        async with transaction(b) as tx:
            await upsert_course(tx.session, tx.publish, course_id="c1", title="Fiber", units=4, capacity=1, now=b.now())
            await upsert_exam(tx.session, exam_id="BPI", title="BPI exam", questions=50)
        yield b


async def test_a_paid_seat_enrolls_once_and_completion_publishes_its_units(bus: BusHarness) -> None:
    await bus.publish(paid("o1", ("course_seat", "c1"), ("exam_fee", "BPI"), ("dues", "m1")), topic="commerce")
    await bus.publish(paid("o2", ("course_seat", "c1"), member="m2"), topic="commerce")  # the course is full
    await bus.run_until_idle()
    async with bus.sessionmaker() as session:
        enrolled = (await session.execute(select(db.enrollments))).mappings().all()
        fees = (await session.execute(select(db.exam_fees))).mappings().all()
    assert [(e["member_id"], e["course_id"], e["enrollment_id"]) for e in enrolled] == [("m1", "c1", "o1:0")]
    assert [(f["member_id"], f["exam_id"]) for f in fees] == [("m1", "BPI")]
    assert await bus.dead_letters("learning") == []

    async with transaction(bus) as tx:
        await complete_course(tx.session, tx.publish, member_id="m1", course_id="c1", completed_at=bus.now())
    await bus.run_until_idle()
    [done] = bus.published(CourseCompleted)
    assert (done.member_id, done.course_id, done.units, done.enrollment_id) == ("m1", "c1", 4, "o1:0")


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture(params=KINDS)
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    async with running(request.param, tmp_path, service="learning", build_runtime=build_runtime, at=START) as r:
        yield r


async def grant(svc: Running, event: OrderPaid) -> None:
    from scte.services.learning.handlers import on_order_paid

    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session, session.begin():
        await on_order_paid(event, session)


async def test_the_catalogue_is_seeded_and_staff_publish_courses(svc: Running) -> None:
    courses = await svc.client.get("/courses", headers=svc.as_member("m1"))
    assert courses.status_code == 200 and len(courses.json()) >= 20
    assert all(c["units"] >= 1 for c in courses.json())
    exams = (await svc.client.get("/exams", headers=svc.as_member("m1"))).json()
    assert {e["exam_id"] for e in exams} >= {"BPI", "DVEP", "BCE"}

    body = {"title": "New course", "units": 2}
    assert_error(await svc.client.put("/courses/new-course", json=body, headers=svc.as_member("m1")), 403)
    made = await svc.client.put("/courses/new-course", json=body, headers=svc.staff())
    assert made.status_code == 200 and made.json()["published_at"] is not None
    assert (await svc.client.get("/courses/new-course", headers=svc.as_member("m1"))).json()["units"] == 2
    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session:
        from scte.bus.storage import bus_outbox

        types = (await session.scalars(select(bus_outbox.c.event_type))).all()
    assert "course.published.v1" in types


async def test_completion_flow_and_the_transcript(svc: Running) -> None:
    await grant(svc, paid("o1", ("course_seat", "fiber-fundamentals")))
    completion = {"member_id": "m1", "course_id": "fiber-fundamentals"}
    assert_error(await svc.client.post("/completions", json=completion, headers=svc.as_member("m1")), 403)
    made = await svc.client.post("/completions", json=completion, headers=svc.staff())
    assert made.status_code == 201, made.text
    assert made.json()["units"] == 3
    again = assert_error(await svc.client.post("/completions", json=completion, headers=svc.staff()), 409)
    assert "no active enrollment" in again["message"]

    transcript = await svc.client.get("/members/m1/transcript", headers=svc.as_member("m1"))
    assert transcript.status_code == 200
    assert transcript.json()["total_units"] == 3
    assert [c["course_id"] for c in transcript.json()["completions"]] == ["fiber-fundamentals"]
    assert_error(await svc.client.get("/members/m1/transcript", headers=svc.as_member("m2")), 403)
    assert (await svc.client.get("/members/m1/transcript", headers=svc.staff())).status_code == 200


async def test_exam_attempts_need_a_paid_fee_and_pass_at_76_percent(svc: Running) -> None:
    attempt = {"member_id": "m1", "correct": 38}
    refused = assert_error(await svc.client.post("/exams/BPI/attempts", json=attempt, headers=svc.staff()), 409)
    assert "no paid exam fee" in refused["message"]
    await grant(svc, paid("o1", ("exam_fee", "BPI"), ("exam_fee", "BPI")))

    failed = await svc.client.post("/exams/BPI/attempts", json={"member_id": "m1", "correct": 37}, headers=svc.staff())
    assert failed.status_code == 201
    assert (failed.json()["score_percent"], failed.json()["passed"]) == ("74.00", False)
    passed = await svc.client.post("/exams/BPI/attempts", json=attempt, headers=svc.staff())
    assert (passed.json()["score_percent"], passed.json()["passed"], passed.json()["attempts_left"]) == (
        "76.00",
        True,
        0,
    )
    assert_error(await svc.client.post("/exams/BPI/attempts", json=attempt, headers=svc.staff()), 409)

    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session:
        from scte.bus.storage import bus_outbox

        types = (await session.scalars(select(bus_outbox.c.event_type).order_by(bus_outbox.c.id))).all()
    assert [t for t in types if t.startswith("exam.")] == [ExamFailed.event_type, ExamPassed.event_type]
    transcript = (await svc.client.get("/members/m1/transcript", headers=svc.as_member("m1"))).json()
    assert [a["passed"] for a in transcript["attempts"]] == [False, True]


async def test_bad_input_and_missing_tokens_are_refused_with_a_message(svc: Running) -> None:
    assert_error(await svc.client.get("/courses"), 401)
    assert_error(await svc.client.get("/members/m1/transcript"), 401)
    assert_error(await svc.client.post("/exams/BPI/attempts", json={"member_id": "m1", "correct": 1}), 401)
    staff = svc.staff()
    assert_error(await svc.client.get("/courses/nope", headers=staff), 404)
    assert_error(
        await svc.client.post("/exams/NOPE/attempts", json={"member_id": "m1", "correct": 1}, headers=staff), 404
    )
    assert_error(
        await svc.client.post("/exams/bpi/attempts", json={"member_id": "m1", "correct": 1}, headers=staff), 422
    )
    assert_error(
        await svc.client.post("/exams/BPI/attempts", json={"member_id": "m1", "correct": -1}, headers=staff), 422
    )
    await grant(svc, paid("o1", ("exam_fee", "BPI")))
    too_many = {"member_id": "m1", "correct": 51}
    assert_error(await svc.client.post("/exams/BPI/attempts", json=too_many, headers=staff), 400)
    wrong_count = {"member_id": "m1", "correct": 10, "questions": 40}
    assert_error(await svc.client.post("/exams/BPI/attempts", json=wrong_count, headers=staff), 400)
    future = {"member_id": "m1", "correct": 40, "taken_at": "2030-01-01T00:00:00Z"}
    assert_error(await svc.client.post("/exams/BPI/attempts", json=future, headers=staff), 400)
    naive = {"member_id": "m1", "course_id": "fiber-fundamentals", "completed_at": "2026-01-01T00:00:00"}
    assert_error(await svc.client.post("/completions", json=naive, headers=staff), 422)
    assert_error(await svc.client.post("/completions", json={"member_id": "m1"}, headers=staff), 422)
    unknown = {"member_id": "m1", "course_id": "nope"}
    assert_error(await svc.client.post("/completions", json=unknown, headers=staff), 404)
    assert_error(await svc.client.put("/courses/x", json={"title": "", "units": 1}, headers=staff), 422)
    assert_error(await svc.client.put("/courses/x", json={"title": "X", "units": -1}, headers=staff), 422)
    assert_error(await svc.client.put("/courses/x", json={"title": "X", "units": 1, "extra": 1}, headers=staff), 422)
    enroll = {"member_id": "m1", "course_id": "fiber-fundamentals"}
    assert (await svc.client.post("/enrollments", json=enroll, headers=staff)).status_code == 201
    assert_error(await svc.client.post("/enrollments", json=enroll, headers=staff), 400)


@pytest.mark.parametrize("capacity", [2**63, 2**31, 2**70])
async def test_a_capacity_past_the_column_is_refused_not_a_server_error(svc: Running, capacity: int) -> None:
    """Fuzzing found `PUT /courses/x` with capacity 2^63 answered 500 (the database's overflow)."""
    body = {"title": "X", "units": 1, "capacity": capacity}
    refused = assert_error(await svc.client.put("/courses/x", json=body, headers=svc.staff()), 422)
    assert "capacity" in refused["message"]
    attempt = {"member_id": "m1", "correct": 2**63}
    assert_error(await svc.client.post("/exams/BPI/attempts", json=attempt, headers=svc.staff()), 422)


# --- sitting an exam from the portal ---------------------------------------------------------------


async def test_a_member_sits_a_paid_exam_and_is_scored_against_the_key(svc: Running) -> None:
    member = svc.as_member("m1")
    refused = assert_error(await svc.client.get("/exams/BPI/paper", headers=member), 409)
    assert "pay the BPI exam fee" in refused["message"]
    assert_error(await svc.client.post("/exams/BPI/sittings", json={"answers": [0] * 50}, headers=member), 409)
    await grant(svc, paid("o1", ("exam_fee", "BPI"), ("exam_fee", "BPI")))

    paper = await svc.client.get("/exams/BPI/paper", headers=member)
    assert paper.status_code == 200, paper.text
    questions = paper.json()["questions"]
    assert len(questions) == 50 and paper.json()["attempts_left"] == 2
    assert all("answer" not in q for q in questions), "the key must not reach the member"
    key = (await svc.client.get("/exams/BPI/questions", headers=svc.staff())).json()
    assert [q["prompt"] for q in key] == [q["prompt"] for q in questions]

    # 37 right of 50 is 74%: not passed; one paid attempt is spent
    wrong = [(q["answer"] + 1) % len(q["choices"]) for q in key]
    answers: list[int | None] = [q["answer"] for q in key[:37]] + wrong[37:]
    failed = await svc.client.post("/exams/BPI/sittings", json={"answers": answers}, headers=member)
    assert failed.status_code == 201, failed.text
    assert (failed.json()["correct"], failed.json()["passed"], failed.json()["attempts_left"]) == (37, False, 1)
    # 38 right and the rest left unanswered is 76%: passed, and exam.passed is published for m1
    answers = [q["answer"] for q in key[:38]] + [None] * 12
    passed = await svc.client.post("/exams/BPI/sittings", json={"answers": answers}, headers=member)
    assert (passed.json()["member_id"], passed.json()["score_percent"], passed.json()["passed"]) == (
        "m1",
        "76.00",
        True,
    )
    assert_error(await svc.client.get("/exams/BPI/paper", headers=member), 409)
    ctx = svc.runtime.context
    assert ctx is not None
    async with ctx.sessionmaker() as session:
        recorded = (await session.execute(select(db.attempts.c.recorded_by))).scalars().all()
    assert recorded == ["m1", "m1"]


async def test_sitting_bad_answers_and_papers_are_refused_with_a_message(svc: Running) -> None:
    member = svc.as_member("m1")
    assert_error(await svc.client.get("/exams/BPI/paper"), 401)
    assert_error(await svc.client.post("/exams/BPI/sittings", json={"answers": []}), 401)
    assert_error(await svc.client.get("/exams/BPI/questions", headers=member), 403)
    assert_error(await svc.client.put("/exams/BPI/questions", json={"questions": []}, headers=member), 403)
    assert_error(await svc.client.get("/exams/NOPE/paper", headers=member), 404)
    await grant(svc, paid("o1", ("exam_fee", "BPI")))
    too_few = assert_error(await svc.client.post("/exams/BPI/sittings", json={"answers": [0]}, headers=member), 400)
    assert "50 questions" in too_few["message"]
    for answers in ([7] * 50, [-1] * 50, ["a"] * 50, [True] * 50, [0] * 1001):
        assert_error(await svc.client.post("/exams/BPI/sittings", json={"answers": answers}, headers=member), 422)
    assert_error(await svc.client.post("/exams/BPI/sittings", json={"answers": [0] * 50, "x": 1}, headers=member), 422)
    # a choice index past this question's choices (the bank has 4) is a 400, and spends nothing
    refused = assert_error(
        await svc.client.post("/exams/BPI/sittings", json={"answers": [5] * 50}, headers=member), 400
    )
    assert "has no choice 5" in refused["message"]
    assert (await svc.client.get("/exams/BPI/paper", headers=member)).json()["attempts_left"] == 1

    staff = svc.staff()
    one = {"prompt": "Which?", "choices": ["a", "b"], "answer": 1}
    for bad in (
        {"questions": []},
        {"questions": [{**one, "choices": ["only"]}]},
        {"questions": [{**one, "choices": ["a"] * 7}]},
        {"questions": [{**one, "answer": 6}]},
        {"questions": [{**one, "prompt": ""}]},
    ):
        assert_error(await svc.client.put("/exams/BPI/questions", json=bad, headers=staff), 422)
    assert_error(
        await svc.client.put("/exams/BPI/questions", json={"questions": [{**one, "answer": 2}]}, headers=staff), 400
    )
    assert_error(await svc.client.put("/exams/NOPE/questions", json={"questions": [one]}, headers=staff), 404)

    # staff replace the paper: its question count follows, and the member sits the new one
    assert (
        await svc.client.put("/exams/BPI/questions", json={"questions": [one, one]}, headers=staff)
    ).status_code == 200
    exams = {e["exam_id"]: e for e in (await svc.client.get("/exams", headers=member)).json()}
    assert exams["BPI"]["questions"] == 2
    result = await svc.client.post("/exams/BPI/sittings", json={"answers": [1, 0]}, headers=member)
    assert (result.json()["correct"], result.json()["questions"], result.json()["passed"]) == (1, 2, False)
