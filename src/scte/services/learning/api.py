"""The learning service's REST API: courses, exams, enrollments, completions, attempts, transcripts.

Members read the catalogue and their own transcript, and sit an exam they paid for (its paper without
the key, their answers scored here); staff (and the course and exam systems, which sign in as staff)
publish courses, set exam papers, record completions and test-centre scores. Every route needs a token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, Strict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Publish
from scte.bus.contracts import Event
from scte.bus.envelope import Envelope
from scte.kit.app import BadRequest, Context, DbSession, ServiceContext
from scte.kit.auth import CurrentPrincipal, Principal, ensure_self_or_staff, require_role
from scte.kit.bounds import Count, IsoInstant, PositiveCount

from . import db
from .domain import CourseState
from .handlers import (
    Conflict,
    attempts_left,
    complete_course,
    enroll_member,
    get_course,
    get_exam,
    paper_to_sit,
    record_attempt,
    sit_exam,
    transcript,
    upsert_course,
    upsert_exam,
)
from .questions import MAX_CHOICES, Question, replace_paper
from .questions import paper as exam_paper

__all__ = ["router"]

router = APIRouter(tags=["learning"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
ExamPath = Annotated[str, Path(min_length=2, max_length=6, pattern=r"^[A-Z]{2,6}$")]
Id = Annotated[str, Field(min_length=1, max_length=128)]


def outbox(ctx: ServiceContext, session: AsyncSession) -> Publish:
    async def publish(event: Event, *, topic: str) -> Envelope:
        return await ctx.publisher.publish(session, event, topic=topic)

    return publish


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CourseIn(Model):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    units: Annotated[int, Strict(), Field(ge=0, le=100)]
    state: CourseState = CourseState.OPEN
    capacity: PositiveCount | None = None


class CourseOut(BaseModel):
    course_id: str
    title: str
    description: str
    units: int
    state: str
    capacity: int | None
    published_at: datetime | None


class ExamIn(Model):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    questions: Annotated[int, Strict(), Field(ge=1, le=1000)]


class ExamOut(BaseModel):
    exam_id: str
    title: str
    questions: int
    pass_mark_percent: Decimal = Decimal("76.00")


class EnrollmentIn(Model):
    member_id: Id
    course_id: Id


class EnrollmentOut(BaseModel):
    enrollment_id: str
    member_id: str
    course_id: str
    order_id: str


class CompletionIn(Model):
    member_id: Id
    course_id: Id
    completed_at: IsoInstant | None = None
    """When the course was finished; now when not given."""


class CompletionOut(BaseModel):
    completion_id: str
    enrollment_id: str
    member_id: str
    course_id: str
    course_title: str
    units: int
    completed_at: datetime


class AttemptIn(Model):
    member_id: Id
    correct: Count
    """Correct answers."""
    questions: PositiveCount | None = None
    """The exam's question count (checked against the exam when given)."""
    taken_at: IsoInstant | None = None


class AttemptOut(BaseModel):
    attempt_id: str
    exam_id: str
    member_id: str
    correct: int
    questions: int
    score_percent: Decimal
    passed: bool
    taken_at: datetime
    attempts_left: int


class SittingIn(Model):
    answers: Annotated[list[Annotated[int, Strict(), Field(ge=0, lt=MAX_CHOICES)] | None], Field(max_length=1000)]
    """The index of the chosen answer for each question of the paper in order; null leaves it unanswered."""


class PaperQuestion(BaseModel):
    number: int
    prompt: str
    choices: list[str]


class KeyedQuestion(PaperQuestion):
    answer: int


class PaperOut(BaseModel):
    exam_id: str
    title: str
    pass_mark_percent: Decimal = Decimal("76.00")
    attempts_left: int
    questions: list[PaperQuestion]


class QuestionIn(Model):
    prompt: Annotated[str, Field(min_length=1, max_length=2000)]
    choices: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500)]], Field(min_length=2, max_length=MAX_CHOICES)
    ]
    answer: Annotated[int, Strict(), Field(ge=0, lt=MAX_CHOICES)]


class PaperIn(Model):
    questions: Annotated[list[QuestionIn], Field(min_length=1, max_length=1000)]


class TranscriptOut(BaseModel):
    member_id: str
    total_units: int
    completions: list[CompletionOut]
    enrollments: list[dict[str, object]]
    attempts: list[dict[str, object]]
    exam_attempts_available: dict[str, int]


# --- courses and exams ----------------------------------------------------------------------------


def _course_out(row: object) -> CourseOut:
    return CourseOut.model_validate(dict(row))  # type: ignore[call-overload]


@router.get("/courses", summary="The course catalogue")
async def list_courses(_: CurrentPrincipal, session: DbSession, include_closed: bool = False) -> list[CourseOut]:
    query = select(db.courses).order_by(db.courses.c.title)
    if not include_closed:
        query = query.where(db.courses.c.state == CourseState.OPEN.value)
    rows = (await session.execute(query)).mappings().all()
    return [_course_out(r) for r in rows]


@router.get("/courses/{course_id}", summary="One course")
async def read_course(course_id: IdPath, _: CurrentPrincipal, session: DbSession) -> CourseOut:
    await get_course(session, course_id)
    row = (await session.execute(select(db.courses).where(db.courses.c.course_id == course_id))).mappings().one()
    return _course_out(row)


@router.put("/courses/{course_id}", summary="Create or change a course (staff); an open course is published")
async def put_course(course_id: IdPath, body: CourseIn, _: Staff, ctx: Context, session: DbSession) -> CourseOut:
    async with session.begin():
        await upsert_course(
            session,
            outbox(ctx, session),
            course_id=course_id,
            title=body.title,
            units=body.units,
            description=body.description,
            state=body.state,
            capacity=body.capacity,
            now=ctx.clock.now(),
        )
        row = (await session.execute(select(db.courses).where(db.courses.c.course_id == course_id))).mappings().one()
    return _course_out(row)


@router.get("/exams", summary="The certification exams (one per program)")
async def list_exams(_: CurrentPrincipal, session: DbSession) -> list[ExamOut]:
    rows = (await session.execute(select(db.exams).order_by(db.exams.c.exam_id))).mappings().all()
    return [ExamOut(exam_id=r["exam_id"], title=r["title"], questions=r["questions"]) for r in rows]


@router.put("/exams/{exam_id}", summary="Create or change an exam (staff)")
async def put_exam(exam_id: ExamPath, body: ExamIn, _: Staff, session: DbSession) -> ExamOut:
    async with session.begin():
        await upsert_exam(session, exam_id=exam_id, title=body.title, questions=body.questions)
    return ExamOut(exam_id=exam_id, title=body.title, questions=body.questions)


# --- enrollments, completions, attempts -----------------------------------------------------------


@router.post("/enrollments", status_code=201, summary="Enroll a member without an order (staff)")
async def post_enrollment(body: EnrollmentIn, principal: Staff, ctx: Context, session: DbSession) -> EnrollmentOut:
    enrollment_id = uuid.uuid4().hex
    order_id = f"staff:{principal.member_id}"
    async with session.begin():
        await enroll_member(
            session,
            enrollment_id=enrollment_id,
            member_id=body.member_id,
            course_id=body.course_id,
            order_id=order_id,
            at=ctx.clock.now(),
        )
    return EnrollmentOut(
        enrollment_id=enrollment_id, member_id=body.member_id, course_id=body.course_id, order_id=order_id
    )


@router.post("/completions", status_code=201, summary="Record a completed course (staff, the course system)")
async def post_completion(body: CompletionIn, _: Staff, ctx: Context, session: DbSession) -> CompletionOut:
    now = ctx.clock.now()
    completed_at = body.completed_at or now
    if completed_at > now:
        raise BadRequest("a completion cannot be in the future")
    async with session.begin():
        event = await complete_course(
            session, outbox(ctx, session), member_id=body.member_id, course_id=body.course_id, completed_at=completed_at
        )
    return CompletionOut.model_validate(event.model_dump())


@router.post(
    "/exams/{exam_id}/attempts", status_code=201, summary="Record an exam attempt's score (staff, the exam system)"
)
async def post_attempt(
    exam_id: ExamPath, body: AttemptIn, principal: Staff, ctx: Context, session: DbSession
) -> AttemptOut:
    now = ctx.clock.now()
    taken_at = body.taken_at or now
    if taken_at > now:
        raise BadRequest("an attempt cannot be taken in the future")
    async with session.begin():
        recorded = await record_attempt(
            session,
            outbox(ctx, session),
            exam_id=exam_id,
            member_id=body.member_id,
            correct=body.correct,
            questions=body.questions,
            taken_at=taken_at,
            recorded_by=principal.member_id,
        )
    return AttemptOut.model_validate(recorded, from_attributes=True)


@router.get(
    "/exams/{exam_id}/paper",
    summary="The exam's questions without the key, to sit it (a member with a paid attempt left)",
)
async def read_paper(exam_id: ExamPath, principal: CurrentPrincipal, session: DbSession) -> PaperOut:
    exam = await get_exam(session, exam_id)
    left = await attempts_left(session, principal.member_id, exam_id)
    if left < 1:
        # the paper is shown only to someone about to sit it: the questions are the exam
        raise Conflict(f"pay the {exam_id} exam fee first: no paid attempt is left")
    questions = await paper_to_sit(session, exam)
    return PaperOut(
        exam_id=exam_id,
        title=exam["title"],
        attempts_left=left,
        questions=[PaperQuestion(number=q.number, prompt=q.prompt, choices=list(q.choices)) for q in questions],
    )


@router.post(
    "/exams/{exam_id}/sittings",
    status_code=201,
    summary="Sit the exam: the caller's answers are scored as one paid attempt (the member themselves)",
)
async def post_sitting(
    exam_id: ExamPath, body: SittingIn, principal: CurrentPrincipal, ctx: Context, session: DbSession
) -> AttemptOut:
    async with session.begin():
        recorded = await sit_exam(
            session,
            outbox(ctx, session),
            exam_id=exam_id,
            member_id=principal.member_id,
            answers=body.answers,
            taken_at=ctx.clock.now(),
        )
    return AttemptOut.model_validate(recorded, from_attributes=True)


def _keyed(questions: list[Question]) -> list[KeyedQuestion]:
    return [
        KeyedQuestion(number=q.number, prompt=q.prompt, choices=list(q.choices), answer=q.answer) for q in questions
    ]


@router.get("/exams/{exam_id}/questions", summary="The exam's paper with its key (staff)")
async def read_questions(exam_id: ExamPath, _: Staff, session: DbSession) -> list[KeyedQuestion]:
    await get_exam(session, exam_id)
    return _keyed(await exam_paper(session, exam_id))


@router.put("/exams/{exam_id}/questions", summary="Replace the exam's paper; its question count follows (staff)")
async def put_questions(exam_id: ExamPath, body: PaperIn, _: Staff, session: DbSession) -> list[KeyedQuestion]:
    questions = [
        Question(number, q.prompt, tuple(q.choices), q.answer) for number, q in enumerate(body.questions, start=1)
    ]
    async with session.begin():
        await get_exam(session, exam_id)
        await replace_paper(session, exam_id, questions)
    return _keyed(questions)


@router.get("/members/{member_id}/transcript", summary="A member's courses, units and exam attempts (self or staff)")
async def read_transcript(member_id: IdPath, principal: CurrentPrincipal, session: DbSession) -> TranscriptOut:
    ensure_self_or_staff(principal, member_id)
    found = await transcript(session, member_id)
    return TranscriptOut(
        member_id=member_id,
        total_units=found.total_units,
        completions=[CompletionOut.model_validate(c) for c in found.completions],
        enrollments=found.enrollments,
        attempts=found.attempts,
        exam_attempts_available=found.exam_attempts_available,
    )
