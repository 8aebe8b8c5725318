"""Events published by the learning service: courses, exams, and attendance at SCTE events.

Subjects are member ids (a member's learning history in order), except course.published whose
aggregate is the course.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import Field

from scte.bus.contracts import Event, event

from ._types import Id, ProgramCode, Units, UtcDatetime

__all__ = ["CourseCompleted", "CoursePublished", "EventAttended", "ExamFailed", "ExamPassed"]

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
"""A score in percent with two decimals, truncated (never rounded up into a pass)."""


@event
class CoursePublished(Event):
    """A course opened for enrollment (or its catalogue entry changed); search indexes it."""

    event_type: ClassVar[str] = "course.published.v1"

    course_id: Id
    title: str
    description: str = ""
    units: Units
    published_at: UtcDatetime

    def subject(self) -> str | None:
        return self.course_id


@event
class CourseCompleted(Event):
    """A member completed a course; it is worth `units` recertification units."""

    event_type: ClassVar[str] = "course.completed.v1"

    completion_id: Id
    enrollment_id: Id
    member_id: Id
    course_id: Id
    course_title: str
    units: Units
    completed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class ExamPassed(Event):
    """A certification exam attempt scored at or above the pass mark (76%)."""

    event_type: ClassVar[str] = "exam.passed.v1"

    attempt_id: Id
    member_id: Id
    program: ProgramCode
    score_percent: Percent
    taken_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class ExamFailed(Event):
    """A certification exam attempt scored below the pass mark; the member may retake it (new fee)."""

    event_type: ClassVar[str] = "exam.failed.v1"

    attempt_id: Id
    member_id: Id
    program: ProgramCode
    score_percent: Percent
    taken_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class EventAttended(Event):
    """A member attended an SCTE event (chapter meeting, Cable-Tec Expo...) worth `units` RUs."""

    event_type: ClassVar[str] = "event.attended.v1"

    attendance_id: Id
    member_id: Id
    event_id: Id
    event_name: str
    units: Units
    attended_on: date

    def subject(self) -> str | None:
        return self.member_id
