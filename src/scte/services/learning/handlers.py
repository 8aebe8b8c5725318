"""What the learning service does: the commands its API takes and the events it reacts to.

Each function takes the session of the transaction it runs in and `publish` (the outbox of that
transaction), so a change and its event commit together. Event handlers are registered in
`HANDLERS`; the consumer injects their parameters by name and records each event in the inbox in the
same transaction, so a redelivered `order.paid` grants nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler, Publish
from scte.bus.contracts import Event
from scte.contracts.commerce import OrderPaid
from scte.contracts.learning import CourseCompleted, CoursePublished, ExamFailed, ExamPassed

from . import db
from .domain import (
    Course,
    CourseState,
    EnrollmentState,
    ExamAttempt,
    LearningError,
    attempts_available,
    complete,
    enroll,
    score_attempt,
)
from .questions import Question, score_answers
from .questions import paper as exam_paper

__all__ = [
    "HANDLERS",
    "TOPIC",
    "Conflict",
    "NotFound",
    "Transcript",
    "attempts_left",
    "complete_course",
    "get_exam",
    "on_order_paid",
    "paper_to_sit",
    "record_attempt",
    "sit_exam",
    "transcript",
    "upsert_course",
]

TOPIC = "learning"
log = logging.getLogger(__name__)


class NotFound(LookupError):
    """The course, exam or enrollment asked for does not exist."""


class Conflict(LearningError):
    """The request is valid but the records' state refuses it (no paid attempt, not enrolled...)."""


# --- courses ---------------------------------------------------------------------------------------


async def upsert_course(
    session: AsyncSession,
    publish: Publish,
    *,
    course_id: str,
    title: str,
    units: int,
    description: str = "",
    state: CourseState = CourseState.OPEN,
    capacity: int | None = None,
    now: datetime,
) -> Course:
    """Create or change a course; an open course is (re)published so search indexes it."""
    course = Course(course_id, title.strip(), units, state, capacity)  # the rules check units, capacity
    if not course.title:
        raise LearningError("a course has a title")
    values: dict[str, Any] = {
        "title": course.title,
        "description": description,
        "units": units,
        "state": state.value,
        "capacity": capacity,
    }
    if state is CourseState.OPEN:
        values["published_at"] = now
    exists = await session.scalar(select(db.courses.c.course_id).where(db.courses.c.course_id == course_id))
    if exists is None:
        await session.execute(insert(db.courses).values(course_id=course_id, **values))
    else:
        await session.execute(update(db.courses).where(db.courses.c.course_id == course_id).values(**values))
    if state is CourseState.OPEN:
        await publish(
            CoursePublished(
                course_id=course_id, title=course.title, description=description, units=units, published_at=now
            ),
            topic=TOPIC,
        )
    return course


async def get_course(session: AsyncSession, course_id: str) -> Course:
    row = (await session.execute(select(db.courses).where(db.courses.c.course_id == course_id))).mappings().first()
    if row is None:
        raise NotFound(f"no course {course_id}")
    return db.row_to_course(row)


async def upsert_exam(session: AsyncSession, *, exam_id: str, title: str, questions: int) -> None:
    if questions < 1:
        raise LearningError("an exam has at least one question")
    exists = await session.scalar(select(db.exams.c.exam_id).where(db.exams.c.exam_id == exam_id))
    if exists is None:
        await session.execute(insert(db.exams).values(exam_id=exam_id, title=title, questions=questions))
    else:
        await session.execute(
            update(db.exams).where(db.exams.c.exam_id == exam_id).values(title=title, questions=questions)
        )


# --- enrollments and completions ------------------------------------------------------------------


async def enroll_member(
    session: AsyncSession, *, enrollment_id: str, member_id: str, course_id: str, order_id: str, at: datetime
) -> None:
    course = await get_course(session, course_id)
    rows = (
        (
            await session.execute(
                select(db.enrollments).where(
                    db.enrollments.c.member_id == member_id, db.enrollments.c.course_id == course_id
                )
            )
        )
        .mappings()
        .all()
    )
    taken = await session.scalar(
        select(func.count())
        .select_from(db.enrollments)
        .where(db.enrollments.c.course_id == course_id, db.enrollments.c.state == EnrollmentState.ENROLLED.value)
    )
    enrollment = enroll(
        course, enrollment_id, member_id, order_id, at, [db.row_to_enrollment(r) for r in rows], taken or 0
    )
    await session.execute(
        insert(db.enrollments).values(
            enrollment_id=enrollment.enrollment_id,
            member_id=member_id,
            course_id=course_id,
            order_id=order_id,
            enrolled_at=enrollment.enrolled_at,
            state=enrollment.state.value,
        )
    )


async def complete_course(
    session: AsyncSession, publish: Publish, *, member_id: str, course_id: str, completed_at: datetime
) -> CourseCompleted:
    """Complete the member's active enrollment in a course; publishes course.completed (its units)."""
    course = await get_course(session, course_id)
    row = (
        (
            await session.execute(
                select(db.enrollments).where(
                    db.enrollments.c.member_id == member_id,
                    db.enrollments.c.course_id == course_id,
                    db.enrollments.c.state == EnrollmentState.ENROLLED.value,
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Conflict(f"member {member_id} has no active enrollment in course {course_id}")
    done, completion = complete(db.row_to_enrollment(row), course, uuid.uuid4().hex, completed_at)
    await session.execute(
        update(db.enrollments)
        .where(db.enrollments.c.enrollment_id == done.enrollment_id)
        .values(state=done.state.value, completed_at=done.completed_at)
    )
    await session.execute(
        insert(db.completions).values(
            completion_id=completion.completion_id,
            enrollment_id=completion.enrollment_id,
            member_id=member_id,
            course_id=course_id,
            course_title=course.title,
            units=completion.units,
            completed_at=completion.completed_at,
        )
    )
    event = CourseCompleted(
        completion_id=completion.completion_id,
        enrollment_id=completion.enrollment_id,
        member_id=member_id,
        course_id=course_id,
        course_title=course.title,
        units=completion.units,
        completed_at=completion.completed_at,
    )
    await publish(event, topic=TOPIC)
    return event


# --- exams ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptRecorded:
    attempt_id: str
    exam_id: str
    member_id: str
    correct: int
    questions: int
    score_percent: Decimal
    passed: bool
    taken_at: datetime
    attempts_left: int


async def record_attempt(
    session: AsyncSession,
    publish: Publish,
    *,
    exam_id: str,
    member_id: str,
    correct: int,
    questions: int | None,
    taken_at: datetime,
    recorded_by: str,
) -> AttemptRecorded:
    """Score an attempt paid for by an exam fee; publishes exam.passed or exam.failed."""
    exam = await get_exam(session, exam_id)
    total = exam["questions"] if questions is None else questions
    if total != exam["questions"]:
        raise LearningError(f"exam {exam_id} has {exam['questions']} questions, not {total}")
    available = await attempts_left(session, member_id, exam_id)
    if available < 1:
        raise Conflict(f"member {member_id} has no paid exam fee left for exam {exam_id}")
    result = score_attempt(ExamAttempt(uuid.uuid4().hex, member_id, exam_id, correct, total, taken_at))
    attempt = result.attempt
    at = attempt.taken_at.astimezone(UTC)
    await session.execute(
        insert(db.attempts).values(
            attempt_id=attempt.attempt_id,
            exam_id=exam_id,
            member_id=member_id,
            correct=correct,
            questions=total,
            score_percent=result.percent,
            passed=result.passed,
            taken_at=at,
            recorded_by=recorded_by,
        )
    )
    fields: dict[str, Any] = {
        "attempt_id": attempt.attempt_id,
        "member_id": member_id,
        "program": exam_id,
        "score_percent": result.percent,
        "taken_at": at,
    }
    await publish(ExamPassed(**fields) if result.passed else ExamFailed(**fields), topic=TOPIC)
    return AttemptRecorded(
        attempt.attempt_id, exam_id, member_id, correct, total, result.percent, result.passed, at, available - 1
    )


async def get_exam(session: AsyncSession, exam_id: str) -> Mapping[Any, Any]:
    exam = (await session.execute(select(db.exams).where(db.exams.c.exam_id == exam_id))).mappings().first()
    if exam is None:
        raise NotFound(f"no exam {exam_id}")
    return exam


async def attempts_left(session: AsyncSession, member_id: str, exam_id: str) -> int:
    """How many paid attempts at the exam the member has not used yet."""
    fees = await session.scalar(
        select(func.count())
        .select_from(db.exam_fees)
        .where(db.exam_fees.c.member_id == member_id, db.exam_fees.c.exam_id == exam_id)
    )
    taken = await session.scalar(
        select(func.count())
        .select_from(db.attempts)
        .where(db.attempts.c.member_id == member_id, db.attempts.c.exam_id == exam_id)
    )
    return attempts_available(fees or 0, taken or 0)


async def paper_to_sit(session: AsyncSession, exam: Mapping[Any, Any]) -> list[Question]:
    """The exam's paper, when it is whole (as many questions as the exam is scored out of)."""
    questions = await exam_paper(session, exam["exam_id"])
    if len(questions) != exam["questions"]:
        raise Conflict(f"exam {exam['exam_id']} has no paper to sit online yet")
    return questions


async def sit_exam(
    session: AsyncSession,
    publish: Publish,
    *,
    exam_id: str,
    member_id: str,
    answers: Sequence[int | None],
    taken_at: datetime,
) -> AttemptRecorded:
    """Score a member's answers to the exam's paper as one paid attempt (the member sits it themselves)."""
    questions = await paper_to_sit(session, await get_exam(session, exam_id))
    return await record_attempt(
        session,
        publish,
        exam_id=exam_id,
        member_id=member_id,
        correct=score_answers(questions, answers),
        questions=len(questions),
        taken_at=taken_at,
        recorded_by=member_id,
    )


# --- transcripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    member_id: str
    enrollments: list[dict[str, Any]]
    completions: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    exam_attempts_available: dict[str, int]
    total_units: int


async def transcript(session: AsyncSession, member_id: str) -> Transcript:
    enrolled = (
        (
            await session.execute(
                select(db.enrollments, db.courses.c.title)
                .join(db.courses, db.courses.c.course_id == db.enrollments.c.course_id)
                .where(db.enrollments.c.member_id == member_id)
                .order_by(db.enrollments.c.enrolled_at)
            )
        )
        .mappings()
        .all()
    )
    done = (
        (
            await session.execute(
                select(db.completions)
                .where(db.completions.c.member_id == member_id)
                .order_by(db.completions.c.completed_at)
            )
        )
        .mappings()
        .all()
    )
    tried = (
        (
            await session.execute(
                select(db.attempts).where(db.attempts.c.member_id == member_id).order_by(db.attempts.c.taken_at)
            )
        )
        .mappings()
        .all()
    )
    fees = (
        await session.execute(
            select(db.exam_fees.c.exam_id, func.count())
            .where(db.exam_fees.c.member_id == member_id)
            .group_by(db.exam_fees.c.exam_id)
        )
    ).all()
    used: dict[str, int] = {}
    for attempt in tried:
        used[attempt["exam_id"]] = used.get(attempt["exam_id"], 0) + 1
    available = {exam_id: attempts_available(count, used.get(exam_id, 0)) for exam_id, count in fees}
    return Transcript(
        member_id=member_id,
        enrollments=[dict(r) for r in enrolled],
        completions=[dict(r) for r in done],
        attempts=[{**dict(r), "score_percent": db.percent(r["score_percent"])} for r in tried],
        exam_attempts_available={k: v for k, v in sorted(available.items())},
        total_units=sum(r["units"] for r in done),
    )


# --- events ---------------------------------------------------------------------------------------


async def on_order_paid(event: OrderPaid, session: AsyncSession) -> None:
    """A paid course seat enrolls its member; a paid exam fee buys one attempt per unit of quantity.

    A seat the rules refuse (course full or closed, already enrolled) is logged, not retried: retrying
    cannot make a seat free, and the order stays on record for staff to refund or move.
    """
    for index, line in enumerate(event.lines):
        member_id = line.beneficiary_id or event.member_id
        if line.kind not in ("course_seat", "exam_fee"):
            continue
        if member_id is None:
            log.warning("order %s line %d: %s without a member, ignored", event.order_id, index, line.kind)
            continue
        if line.kind == "exam_fee":
            exam = await session.scalar(select(db.exams.c.exam_id).where(db.exams.c.exam_id == line.reference))
            if exam is None:
                log.warning("order %s line %d: no exam %s, fee not granted", event.order_id, index, line.reference)
                continue
            await session.execute(
                insert(db.exam_fees),
                [
                    {
                        "fee_id": f"{event.order_id}:{index}:{n}",
                        "member_id": member_id,
                        "exam_id": line.reference,
                        "order_id": event.order_id,
                        "paid_at": event.paid_at,
                    }
                    for n in range(line.quantity)
                ],
            )
            continue
        try:
            async with session.begin_nested():
                await enroll_member(
                    session,
                    enrollment_id=f"{event.order_id}:{index}",
                    member_id=member_id,
                    course_id=line.reference,
                    order_id=event.order_id,
                    at=event.paid_at,
                )
        except (LearningError, NotFound) as exc:
            log.warning("order %s line %d: seat in %s not granted: %s", event.order_id, index, line.reference, exc)


HANDLERS: dict[str | type[Event], Handler] = {OrderPaid.event_type: on_order_paid}
"""The events this service reacts to (its queue subscribes to exactly these)."""
