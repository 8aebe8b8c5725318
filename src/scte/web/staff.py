"""The staff pages (`/staff`): member administration, courses, report runs.

Who may open them: staff only (a member or a company admin gets 403, a signed-out visitor sign-in).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from scte.web.site import Page, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

PAGE_SIZE = 50


@router.get("/staff")
async def staff_home(page: Staff, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    found = await page.services.get("members", "/members", limit=PAGE_SIZE, offset=offset)
    return page.render(
        "staff/home.html", title="Staff", members=found["items"], total=found["total"], offset=offset, size=PAGE_SIZE
    )
