"""Learning rules: the 76% pass mark and its rounding, paid attempts, enrollment and completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from scte.services.learning.domain import (
    PASS_MARK_PERCENT,
    Course,
    CourseState,
    Enrollment,
    EnrollmentState,
    ExamAttempt,
    LearningError,
    attempts_available,
    complete,
    enroll,
    is_pass,
    score_attempt,
    score_percent,
    transcript_units,
    withdraw,
)

T0 = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def attempt(correct: int, questions: int = 50) -> ExamAttempt:
    return ExamAttempt("a-1", "m-1", "BPI", correct, questions, T0)


# --- exams -----------------------------------------------------------------------------------------


def test_pass_mark_is_76_percent() -> None:
    assert Decimal("76") == PASS_MARK_PERCENT


@pytest.mark.parametrize(
    ("percent", "passed"),
    [("75.99", False), ("76.00", True), ("76", True), ("76.01", True), ("0", False), ("100", True)],
)
def test_boundary_of_the_pass_mark(percent: str, passed: bool) -> None:
    assert is_pass(Decimal(percent)) is passed


@pytest.mark.parametrize(
    ("correct", "questions", "shown", "passed"),
    [
        (38, 50, "76.00", True),  # SCTE's 50-question exam: 38 right passes
        (37, 50, "74.00", False),
        (7599, 10000, "75.99", False),
        (7600, 10000, "76.00", True),
        (75995, 100000, "75.99", False),  # would round up to 76.00: truncated instead, and fails
        (76001, 100000, "76.00", True),
        (2, 3, "66.66", False),  # truncated, not 66.67
        (0, 50, "0.00", False),
        (50, 50, "100.00", True),
    ],
)
def test_score_is_truncated_and_agrees_with_the_verdict(correct: int, questions: int, shown: str, passed: bool) -> None:
    result = score_attempt(attempt(correct, questions))
    assert result.percent == Decimal(shown)
    assert str(result.percent) == shown
    assert result.passed is passed
    assert is_pass(result.percent) is passed


@pytest.mark.parametrize(("correct", "questions"), [(-1, 50), (51, 50), (0, 0)])
def test_impossible_scores_are_refused(correct: int, questions: int) -> None:
    with pytest.raises(LearningError):
        score_percent(correct, questions)


def test_an_attempt_time_needs_a_zone() -> None:
    with pytest.raises(LearningError):
        score_attempt(ExamAttempt("a", "m", "BPI", 40, 50, datetime(2025, 1, 1)))


def test_each_attempt_is_paid_for() -> None:
    assert attempts_available(exam_fees_paid=1, attempts_taken=0) == 1
    assert attempts_available(exam_fees_paid=1, attempts_taken=1) == 0
    assert attempts_available(exam_fees_paid=2, attempts_taken=1) == 1
    assert attempts_available(exam_fees_paid=0, attempts_taken=3) == 0


# --- courses ---------------------------------------------------------------------------------------


COURSE = Course("c-1", "Fiber Basics", units=3, capacity=2)


def new_enrollment(
    existing: list[Enrollment] | None = None, seats_taken: int = 0, course: Course = COURSE
) -> Enrollment:
    return enroll(course, "e-1", "m-1", "o-1", T0, existing or [], seats_taken)


def test_enrolling_in_an_open_course() -> None:
    e = new_enrollment()
    assert (e.state, e.course_id, e.member_id, e.order_id) == (EnrollmentState.ENROLLED, "c-1", "m-1", "o-1")


@pytest.mark.parametrize("state", [CourseState.DRAFT, CourseState.CLOSED])
def test_enrolling_needs_an_open_course(state: CourseState) -> None:
    with pytest.raises(LearningError, match="not open"):
        new_enrollment(course=Course("c-1", "x", 1, state))


def test_enrolling_needs_a_free_seat() -> None:
    new_enrollment(seats_taken=1)
    with pytest.raises(LearningError, match="full"):
        new_enrollment(seats_taken=2)
    new_enrollment(seats_taken=10_000, course=Course("c-1", "self-paced", 1, capacity=None))


def test_no_second_enrollment_while_enrolled_or_after_completion() -> None:
    active = new_enrollment()
    with pytest.raises(LearningError, match="already enrolled"):
        new_enrollment([active])
    done, _ = complete(active, COURSE, "done-1", T0 + timedelta(days=3))
    with pytest.raises(LearningError, match="already completed"):
        new_enrollment([done])
    assert new_enrollment([withdraw(active)]).state is EnrollmentState.ENROLLED


def test_another_members_enrollment_does_not_block() -> None:
    other = enroll(COURSE, "e-9", "m-9", "o-9", T0, [], 0)
    assert new_enrollment([other]).member_id == "m-1"


def test_completion_credits_the_course_unit_value() -> None:
    enrollment = new_enrollment()
    done, completion = complete(enrollment, COURSE, "done-1", T0 + timedelta(days=3))
    assert done.state is EnrollmentState.COMPLETED
    assert completion.units == 3
    assert (completion.member_id, completion.course_id, completion.enrollment_id) == ("m-1", "c-1", "e-1")
    assert transcript_units([completion, completion]) == 6


def test_completion_time_is_kept_in_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    _, completion = complete(new_enrollment(), COURSE, "d", datetime(2025, 4, 1, 23, 0, tzinfo=new_york))
    assert completion.completed_at == datetime(2025, 4, 2, 4, 0, tzinfo=UTC)


def test_completion_rules() -> None:
    enrollment = new_enrollment()
    with pytest.raises(LearningError, match="before the enrollment"):
        complete(enrollment, COURSE, "d", T0 - timedelta(seconds=1))
    with pytest.raises(LearningError, match="another course"):
        complete(enrollment, Course("c-2", "y", 1), "d", T0)
    done, _ = complete(enrollment, COURSE, "d", T0)
    with pytest.raises(LearningError, match="completed"):
        complete(done, COURSE, "d", T0)
    with pytest.raises(LearningError):
        complete(withdraw(new_enrollment()), COURSE, "d", T0)
    with pytest.raises(LearningError):
        withdraw(done)


def test_course_values_are_checked() -> None:
    with pytest.raises(LearningError):
        Course("c", "x", units=-1)
    with pytest.raises(LearningError):
        Course("c", "x", units=1, capacity=0)
