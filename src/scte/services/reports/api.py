"""The reports REST API (staff): each report as JSON or RFC 4180 CSV, and report runs (a CSV file
kept under the data directory, announced by report.ready so that its requester is told)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.contracts.reports import ReportReady
from scte.kit.app import BadRequest, Context, DbSession, NotFound
from scte.kit.auth import CurrentPrincipal, Principal, ensure_self_or_staff, require_role

from .db import award_counts, completion_counts, member_statuses, report_runs, revenue
from .domain import HEADERS, Aggregates, ReportKind, rows_for, to_csv

__all__ = ["router"]

router = APIRouter(tags=["reports"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
NamePath = Annotated[str, Path(min_length=1, max_length=64)]
TOPIC = "reports"


class ReportOut(BaseModel):
    kind: str
    headers: list[str]
    rows: list[list[str]]


class RunOut(BaseModel):
    report_id: str
    kind: str
    requested_by: str
    row_count: int
    location: str
    created_at: datetime


def _kind(name: str) -> ReportKind:
    try:
        return ReportKind(name)
    except ValueError:
        raise NotFound(f"no report {name!r}; reports: {', '.join(k.value for k in ReportKind)}") from None


async def load(session: AsyncSession) -> Aggregates:
    """The counters, read into the domain's Aggregates."""
    agg = Aggregates()
    for member_id, status in await session.execute(select(member_statuses.c.member_id, member_statuses.c.status)):
        agg.member_status[member_id] = status
    agg.certifications = Counter({(r.program, r.month): r.count for r in await session.execute(select(award_counts))})
    agg.revenue = Counter({(r.month, r.currency): r.cents for r in await session.execute(select(revenue))})
    agg.completions = Counter({r.month: r.count for r in await session.execute(select(completion_counts))})
    return agg


@router.get("/reports", summary="The reports there are (staff)")
async def list_reports(principal: Staff) -> list[str]:
    return [k.value for k in ReportKind]


CSV_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as CSV, a header row first",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
"""What the CSV routes answer: a file, not JSON (response_class=Response documents no media type)."""


@router.get("/reports/{name}.csv", summary="A report as CSV (staff)", response_class=Response, responses=CSV_FILE)
async def report_csv(name: NamePath, session: DbSession, principal: Staff) -> Response:
    kind = _kind(name)
    body = to_csv(kind, rows_for(kind, await load(session)))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind.value}.csv"'},
    )


@router.get("/reports/{name}", summary="A report as JSON (staff)")
async def report_json(name: NamePath, session: DbSession, principal: Staff) -> ReportOut:
    kind = _kind(name)
    rows = rows_for(kind, await load(session))
    return ReportOut(kind=kind.value, headers=list(HEADERS[kind]), rows=[list(r) for r in rows])


@router.post("/reports/{name}/runs", status_code=201, summary="Generate a report file; report.ready follows (staff)")
async def run_report(name: NamePath, ctx: Context, session: DbSession, principal: Staff) -> RunOut:
    kind = _kind(name)
    report_id = uuid.uuid4().hex
    now = ctx.clock.now()
    directory = ctx.settings.service_dir("reports")
    path = directory / f"{report_id}.csv"
    location = f"/reports/runs/{report_id}.csv"
    async with session.begin():
        rows = rows_for(kind, await load(session))
        body = to_csv(kind, rows)
        await asyncio.to_thread(_write, path, body)
        await session.execute(
            report_runs.insert().values(
                report_id=report_id,
                kind=kind.value,
                requested_by=principal.member_id,
                row_count=len(rows),
                location=location,
                created_at=now,
            )
        )
        event = ReportReady(
            report_id=report_id,
            kind=kind.value,
            requested_by=principal.member_id,
            row_count=len(rows),
            location=location,
            ready_at=now,
        )
        await ctx.publisher.publish(session, event, topic=TOPIC)
    return RunOut(
        report_id=report_id,
        kind=kind.value,
        requested_by=principal.member_id,
        row_count=len(rows),
        location=location,
        created_at=now,
    )


def _write(path: object, body: str) -> None:
    from pathlib import Path as FilePath

    assert isinstance(path, FilePath)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8", newline="")


@router.get(
    "/reports/runs/{report_id}.csv",
    summary="A generated report file (its requester, staff)",
    response_class=FileResponse,
    responses=CSV_FILE,
)
async def run_file(
    report_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    ctx: Context,
    session: DbSession,
    principal: CurrentPrincipal,
) -> FileResponse:
    row = (await session.execute(select(report_runs).where(report_runs.c.report_id == report_id))).first()
    if row is None:
        raise NotFound(f"no report run {report_id}")
    ensure_self_or_staff(principal, row.requested_by)
    path = ctx.settings.service_dir("reports") / f"{report_id}.csv"
    if not path.is_file():
        raise BadRequest("the report file is gone; run the report again")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"{row.kind}-{report_id}.csv")
