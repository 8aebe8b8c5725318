"""Events published by the reports service."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = ["ReportKind", "ReportReady"]

ReportKind = Literal[
    "members_by_status",
    "certifications_per_program_month",
    "revenue_per_month",
    "completions_per_month",
]


@event
class ReportReady(Event):
    """A requested report was generated and can be downloaded (CSV)."""

    event_type: ClassVar[str] = "report.ready.v1"

    report_id: Id
    kind: ReportKind
    requested_by: Id
    company_id: Id | None = None
    format: Literal["csv"] = "csv"
    row_count: Annotated[int, Field(ge=0)]
    location: str
    ready_at: UtcDatetime

    def subject(self) -> str | None:
        return self.report_id
