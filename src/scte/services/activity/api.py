"""The activity REST API: a member's stream, newest first (the member themselves, or staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from scte.kit.app import DbSession
from scte.kit.auth import CurrentPrincipal, ensure_self_or_staff
from scte.kit.bounds import IsoInstant

from .db import entries

__all__ = ["router"]

router = APIRouter(tags=["activity"])

IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class EntryOut(BaseModel):
    activity_id: str
    kind: str
    occurred_at: datetime
    summary: str
    path: str | None


@router.get("/members/{member_id}/activity", summary="A member's activity stream, newest first")
async def member_activity(
    member_id: IdPath,
    session: DbSession,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[IsoInstant | None, Query(description="only entries before this instant (paging)")] = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
) -> list[EntryOut]:
    ensure_self_or_staff(principal, member_id)
    query = (
        select(entries)
        .where(entries.c.member_id == member_id)
        .order_by(entries.c.occurred_at.desc(), entries.c.activity_id)
        .limit(limit)
    )
    if before is not None:
        query = query.where(entries.c.occurred_at < before)
    if kind is not None:
        query = query.where(entries.c.kind == kind)
    return [EntryOut.model_validate(row, from_attributes=True) for row in await session.execute(query)]
