"""The search REST API: one search box over the member directory, courses and media (signed in)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from scte.kit.app import BadRequest, DbSession
from scte.kit.auth import CurrentPrincipal

from . import index
from .domain import MAX_QUERY_CHARS, parse_query

__all__ = ["router"]

router = APIRouter(tags=["search"])

PUBLIC_DETAILS = frozenset({"designations", "units", "thumbnail"})
"""What of a document's stored details any signed-in member may read; anything else the index holds
(an upload's owner_id, indexed by earlier versions) stays out of the answer."""


class HitOut(BaseModel):
    kind: str
    id: str
    title: str
    summary: str
    facets: dict[str, str]
    details: dict[str, Any]


class ResultsOut(BaseModel):
    query: str
    results: list[HitOut]


@router.get("/search", summary='Search: words, "phrases", -exclusions, kind:/program:/city:/country: filters')
async def search(
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=4 * MAX_QUERY_CHARS)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> ResultsOut:
    query = parse_query(q)
    if query.is_empty and not query.filters:
        raise BadRequest("give at least one word to search for (or a filter such as program:BPI)")
    hits = await index.search(session, query, limit=limit, offset=offset)
    results = []
    for hit in hits:
        extra = dict(hit.extra)
        facets = {str(k): str(v) for k, v in (extra.pop("facets", {}) or {}).items()}
        details = {k: v for k, v in extra.items() if k in PUBLIC_DETAILS}
        results.append(
            HitOut(kind=hit.kind, id=hit.entity_id, title=hit.title, summary=hit.body, facets=facets, details=details)
        )
    return ResultsOut(query=q, results=results)
