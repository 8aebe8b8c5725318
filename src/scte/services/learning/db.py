"""The learning service's tables: courses, enrollments, completions, exams, paid exam fees, attempts.

Rows map to the domain's dataclasses (`row_to_course`, ...): the rules stay in `domain.py`, this
module only stores what they decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

from scte.bus.storage import UtcDateTime, include_in
from scte.kit.revocation import include_revocations

from .domain import Completion, Course, CourseState, Enrollment, EnrollmentState

__all__ = [
    "attempts",
    "completions",
    "courses",
    "enrollments",
    "exam_fees",
    "exam_questions",
    "exams",
    "metadata",
    "row_to_completion",
    "row_to_course",
    "row_to_enrollment",
]

metadata = MetaData()

courses = Table(
    "courses",
    metadata,
    Column("course_id", String(128), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("units", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("capacity", Integer, nullable=True),
    Column("published_at", UtcDateTime, nullable=True),
)

enrollments = Table(
    "enrollments",
    metadata,
    Column("enrollment_id", String(128), primary_key=True),
    Column("member_id", String(128), nullable=False),
    Column("course_id", String(128), ForeignKey("courses.course_id"), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("enrolled_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Index("ix_enrollments_member", "member_id"),
    Index("ix_enrollments_course", "course_id", "state"),
)

completions = Table(
    "completions",
    metadata,
    Column("completion_id", String(128), primary_key=True),
    Column("enrollment_id", String(128), ForeignKey("enrollments.enrollment_id"), nullable=False, unique=True),
    Column("member_id", String(128), nullable=False),
    Column("course_id", String(128), ForeignKey("courses.course_id"), nullable=False),
    Column("course_title", String(200), nullable=False),
    Column("units", Integer, nullable=False),
    Column("completed_at", UtcDateTime, nullable=False),
    Index("ix_completions_member", "member_id"),
)

exams = Table(
    "exams",
    metadata,
    Column("exam_id", String(16), primary_key=True, comment="the program code: one exam per program"),
    Column("title", String(200), nullable=False),
    Column("questions", Integer, nullable=False),
)

exam_fees = Table(
    "exam_fees",
    metadata,
    Column("fee_id", String(160), primary_key=True, comment="<order id>:<line index>:<n>"),
    Column("member_id", String(128), nullable=False),
    Column("exam_id", String(16), ForeignKey("exams.exam_id"), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("paid_at", UtcDateTime, nullable=False),
    Index("ix_exam_fees_member_exam", "member_id", "exam_id"),
)
"""One row per paid exam fee: each buys one attempt."""

exam_questions = Table(
    "exam_questions",
    metadata,
    Column("exam_id", String(16), ForeignKey("exams.exam_id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("prompt", Text, nullable=False),
    Column("choices", Text, nullable=False, comment="a JSON array of the choices' texts"),
    Column("answer", Integer, nullable=False, comment="the index of the right choice"),
)
"""The exam's paper (scte.services.learning.questions): the key is shown to staff only."""

attempts = Table(
    "exam_attempts",
    metadata,
    Column("attempt_id", String(128), primary_key=True),
    Column("exam_id", String(16), ForeignKey("exams.exam_id"), nullable=False),
    Column("member_id", String(128), nullable=False),
    Column("correct", Integer, nullable=False),
    Column("questions", Integer, nullable=False),
    Column("score_percent", Numeric(5, 2), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("taken_at", UtcDateTime, nullable=False),
    Column("recorded_by", String(128), nullable=False),
    Index("ix_exam_attempts_member_exam", "member_id", "exam_id"),
)

include_in(metadata)
include_revocations(metadata)


def row_to_course(row: Mapping[Any, Any]) -> Course:
    return Course(
        course_id=row["course_id"],
        title=row["title"],
        units=row["units"],
        state=CourseState(row["state"]),
        capacity=row["capacity"],
    )


def row_to_enrollment(row: Mapping[Any, Any]) -> Enrollment:
    return Enrollment(
        enrollment_id=row["enrollment_id"],
        member_id=row["member_id"],
        course_id=row["course_id"],
        order_id=row["order_id"],
        enrolled_at=row["enrolled_at"],
        state=EnrollmentState(row["state"]),
        completed_at=row["completed_at"],
    )


def row_to_completion(row: Mapping[Any, Any]) -> Completion:
    return Completion(
        completion_id=row["completion_id"],
        enrollment_id=row["enrollment_id"],
        member_id=row["member_id"],
        course_id=row["course_id"],
        units=row["units"],
        completed_at=row["completed_at"],
    )


def percent(value: Any) -> Decimal:
    """A stored score as the Decimal the rules speak (SQLite may hand back a float)."""
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(Decimal("0.01"))
