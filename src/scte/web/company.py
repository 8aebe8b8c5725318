"""The company admin's pages (`/company`): employees, the rollup, purchase orders and invoices.

Who may open them: a company's admins (the token's `company_id` names their company) and staff.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.portal import money
from scte.web.site import Page, PageForbidden, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

CompanyAdmin = Annotated[Page, Depends(role_page("company_admin"))]


def _company(page: Page) -> str:
    if not page.company_id:
        raise PageForbidden("your account administers no company")
    return page.company_id


@router.get("/company")
async def company_home(page: CompanyAdmin) -> Response:
    company_id = _company(page)
    s = page.services
    company, rollup, employees = await asyncio.gather(
        s.get("companies", f"/companies/{company_id}"),
        s.get("companies", f"/companies/{company_id}/rollup"),
        s.get("companies", f"/companies/{company_id}/employees"),
    )
    return page.render(
        "company/home.html", title=company["name"], company=company, rollup=rollup, employees=employees, money=money
    )
