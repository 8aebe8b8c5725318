"""Learning rules: exams and their pass mark, courses, enrollments and completions.

An SCTE certification exam passes at 76 percent correct. The decision compares exact fractions
(correct * 100 >= 76 * questions), and the percentage shown is truncated to two decimals, never
rounded: 75.995% is shown as 75.99 and fails, so what the member reads always agrees with the verdict.

A course is worth a number of recertification units (RUs), credited on completion. A member enrolls
after paying for a seat, at most once at a time per course, while it is open and has seats, and
completes it once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

__all__ = [
    "PASS_MARK_PERCENT",
    "Completion",
    "Course",
    "CourseState",
    "Enrollment",
    "EnrollmentState",
    "ExamAttempt",
    "ExamResult",
    "LearningError",
    "attempts_available",
    "complete",
    "enroll",
    "is_pass",
    "score_attempt",
    "score_percent",
    "transcript_units",
    "withdraw",
]

PASS_MARK_PERCENT = Decimal("76.00")
_CENTI = Decimal("0.01")


class LearningError(ValueError):
    """A request the rules refuse; the message says why, for the member."""


def _require_utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise LearningError(f"{what} must carry a time zone")
    return moment.astimezone(UTC)


# --- exams -----------------------------------------------------------------------------------------


def score_percent(correct: int, questions: int) -> Decimal:
    """The score shown to the member: percent correct, truncated to two decimals."""
    if questions <= 0:
        raise LearningError("an exam has at least one question")
    if not 0 <= correct <= questions:
        raise LearningError(f"correct answers must be between 0 and {questions}, got {correct}")
    return (Decimal(correct) * 100 / Decimal(questions)).quantize(_CENTI, rounding=ROUND_DOWN)


def is_pass(percent: Decimal) -> bool:
    """Whether a score (in percent, as a Decimal: floats cannot say 76.00 exactly) passes."""
    return percent >= PASS_MARK_PERCENT


@dataclass(frozen=True)
class ExamAttempt:
    attempt_id: str
    member_id: str
    program: str
    correct: int
    questions: int
    taken_at: datetime


@dataclass(frozen=True)
class ExamResult:
    attempt: ExamAttempt
    percent: Decimal
    passed: bool


def score_attempt(attempt: ExamAttempt) -> ExamResult:
    _require_utc(attempt.taken_at, "taken_at")
    percent = score_percent(attempt.correct, attempt.questions)
    # Exact comparison; equal to is_pass(percent) because truncation cannot cross 76.00.
    passed = attempt.correct * 100 >= PASS_MARK_PERCENT * attempt.questions
    return ExamResult(attempt, percent, bool(passed))


def attempts_available(exam_fees_paid: int, attempts_taken: int) -> int:
    """Each attempt, first or retake, is paid for: one exam fee buys one attempt."""
    return max(0, exam_fees_paid - attempts_taken)


# --- courses, enrollments, completions ------------------------------------------------------------


class CourseState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Course:
    course_id: str
    title: str
    units: int
    state: CourseState = CourseState.OPEN
    capacity: int | None = None
    """Seats; None is unlimited (self-paced online courses)."""

    def __post_init__(self) -> None:
        if self.units < 0:
            raise LearningError("a course's unit value cannot be negative")
        if self.capacity is not None and self.capacity < 1:
            raise LearningError("a course with a capacity has at least one seat")


class EnrollmentState(StrEnum):
    ENROLLED = "enrolled"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Enrollment:
    enrollment_id: str
    member_id: str
    course_id: str
    order_id: str
    enrolled_at: datetime
    state: EnrollmentState = EnrollmentState.ENROLLED
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Completion:
    """A finished course: the fact that credits `units` RUs (course.completed)."""

    completion_id: str
    enrollment_id: str
    member_id: str
    course_id: str
    units: int
    completed_at: datetime


def enroll(
    course: Course,
    enrollment_id: str,
    member_id: str,
    order_id: str,
    enrolled_at: datetime,
    existing: list[Enrollment],
    seats_taken: int,
) -> Enrollment:
    """Enroll a member who paid for a seat (`order_id`).

    `existing` is the member's enrollments in this course. A withdrawn enrollment does not block a
    new one; an active or completed one does: a course credits its units once.
    """
    if course.state is not CourseState.OPEN:
        raise LearningError(f"course {course.course_id} is not open for enrollment")
    for other in existing:
        if other.member_id != member_id or other.course_id != course.course_id:
            continue
        if other.state is EnrollmentState.ENROLLED:
            raise LearningError("already enrolled in this course")
        if other.state is EnrollmentState.COMPLETED:
            raise LearningError("this course was already completed")
    if course.capacity is not None and seats_taken >= course.capacity:
        raise LearningError(f"course {course.course_id} is full")
    return Enrollment(enrollment_id, member_id, course.course_id, order_id, _require_utc(enrolled_at, "enrolled_at"))


def withdraw(enrollment: Enrollment) -> Enrollment:
    if enrollment.state is not EnrollmentState.ENROLLED:
        raise LearningError(f"cannot withdraw from a {enrollment.state} enrollment")
    return replace(enrollment, state=EnrollmentState.WITHDRAWN)


def complete(
    enrollment: Enrollment, course: Course, completion_id: str, completed_at: datetime
) -> tuple[Enrollment, Completion]:
    """Complete an active enrollment; the completion carries the course's unit value."""
    if enrollment.course_id != course.course_id:
        raise LearningError("the enrollment is for another course")
    if enrollment.state is not EnrollmentState.ENROLLED:
        raise LearningError(f"cannot complete a {enrollment.state} enrollment")
    at = _require_utc(completed_at, "completed_at")
    if at < enrollment.enrolled_at:
        raise LearningError("a course cannot be completed before the enrollment")
    done = replace(enrollment, state=EnrollmentState.COMPLETED, completed_at=at)
    return done, Completion(
        completion_id, enrollment.enrollment_id, enrollment.member_id, course.course_id, course.units, at
    )


def transcript_units(completions: list[Completion]) -> int:
    """All units a member's completed courses are worth (the transcript's total)."""
    return sum(c.units for c in completions)
