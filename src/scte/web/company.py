"""The company admin's pages (`/company`): the rollup and employees, invitations, purchase orders,
course seats bought for employees on a purchase order, and the monthly invoices.

Who may open them: a company's admins (the token's `company_id` names their company); others get 403,
a signed-out visitor sign-in. The services check the same again on every call.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.forms import errors_from, required, text
from scte.web.portal import money
from scte.web.site import Page, PageForbidden, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

CompanyAdmin = Annotated[Page, Depends(role_page("company_admin"))]


def _company(page: Page) -> str:
    if not page.company_id:
        raise PageForbidden("your account administers no company")
    return page.company_id


async def _home(page: Page, errors: dict[str, str] | None = None, values: dict[str, str] | None = None) -> Response:
    company_id = _company(page)
    s = page.services
    company, rollup, employees, invitations = await asyncio.gather(
        s.get("companies", f"/companies/{company_id}"),
        s.get("companies", f"/companies/{company_id}/rollup"),
        s.get("companies", f"/companies/{company_id}/employees"),
        s.get("companies", f"/companies/{company_id}/invitations"),
    )
    return page.render(
        "company/home.html",
        status=400 if errors else 200,
        title=company["name"],
        company=company,
        rollup=rollup,
        employees=employees,
        invitations=invitations,
        money=money,
        errors=errors or {},
        values=values or {},
    )


@router.get("/company")
async def company_home(page: CompanyAdmin) -> Response:
    return await _home(page)


@router.post("/company/invitations")
async def invite(page: CompanyAdmin) -> Response:
    form = await page.form()
    company_id = _company(page)
    email = text(form, "email", 254)
    errors = required({"email": email}, {"email": "the member's email address"})
    if not errors:
        try:
            await page.services.post("companies", f"/companies/{company_id}/invitations", {"email": email})
            return page.redirect("/company?notice=invited")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(exc, ("email",), {"member": "email", "invit": "email"})
            errors = {"email": errors.get("email") or errors.get("_form", "")}
    return await _home(page, errors, {"email": email})


# -- purchase orders, seats and invoices ---------------------------------------------------------------


async def _orders_page(
    page: Page, errors: dict[str, str] | None = None, values: dict[str, str] | None = None
) -> Response:
    company_id = _company(page)
    s = page.services
    pos, invoices, employees, courses = await asyncio.gather(
        s.get("commerce", f"/companies/{company_id}/purchase-orders"),
        s.get("commerce", f"/companies/{company_id}/invoices"),
        s.get("companies", f"/companies/{company_id}/employees"),
        s.get("learning", "/courses"),
    )
    today = datetime.now(UTC).date()
    defaults = {"valid_from": today.isoformat(), "valid_until": (today + timedelta(days=365)).isoformat()}
    return page.render(
        "company/orders.html",
        status=400 if errors else 200,
        title="Purchase orders and invoices",
        pos=pos,
        invoices=invoices,
        employees=employees,
        courses=courses,
        money=money,
        errors=errors or {},
        values={**defaults, **(values or {})},
        course_options=[(c["course_id"], c["title"]) for c in courses],
        people=[(e["member_id"], e["display_name"] or e["member_id"]) for e in employees],
        po_numbers={p["po_id"]: p["number"] for p in pos},
        po_options=[(p["po_id"], f"{p['number']} ({money(p['remaining_cents'], p['currency'])} left)") for p in pos],
    )


@router.get("/company/orders")
async def orders(page: CompanyAdmin) -> Response:
    return await _orders_page(page)


_PO_FIELDS = ("number", "limit", "valid_from", "valid_until")


@router.post("/company/purchase-orders")
async def open_purchase_order(page: CompanyAdmin) -> Response:
    form = await page.form()
    company_id = _company(page)
    values = {name: text(form, name, 64) for name in _PO_FIELDS}
    errors = required(
        values,
        {
            "number": "the purchase order number",
            "limit": "the limit",
            "valid_from": "the start",
            "valid_until": "the end",
        },
    )
    body: dict[str, Any] = {}
    if "limit" not in errors:
        try:
            dollars = float(values["limit"].replace(",", "").lstrip("$"))
            if not 0 < dollars < 10_000_000:
                raise ValueError
            body["limit_cents"] = round(dollars * 100)
        except ValueError:
            errors["limit"] = "The limit must be an amount in dollars, for example 5000"
    for name in ("valid_from", "valid_until"):
        if name not in errors:
            try:
                body[name] = date.fromisoformat(values[name]).isoformat()
            except ValueError:
                errors[name] = "Enter a date as YYYY-MM-DD"
    if not errors:
        body["number"] = values["number"]
        try:
            await page.services.post("commerce", f"/companies/{company_id}/purchase-orders", body)
            return page.redirect("/company/orders?notice=po")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(
                exc, _PO_FIELDS, {"limit_cents": "limit", "valid": "valid_until", "purchase order": "number"}
            )
    return await _orders_page(page, errors, values)


@router.post("/company/seats")
async def buy_seat(page: CompanyAdmin) -> Response:
    """A course seat for an employee, charged to a purchase order (one order, one charge)."""
    form = await page.form()
    company_id = _company(page)
    values = {name: text(form, name, 128) for name in ("course_id", "beneficiary_id", "po_id")}
    errors = required(
        values, {"course_id": "the course", "beneficiary_id": "the employee", "po_id": "the purchase order"}
    )
    if not errors:
        line = {"kind": "course_seat", "reference": values["course_id"], "beneficiary_id": values["beneficiary_id"]}
        try:
            order = await page.services.post("commerce", "/orders", {"company_id": company_id, "lines": [line]})
            await page.services.post(
                "commerce", f"/purchase-orders/{values['po_id']}/charges", {"order_id": order["order_id"]}
            )
            return page.redirect("/company/orders?notice=charged")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(
                exc,
                ("course_id", "beneficiary_id", "po_id"),
                {"course": "course_id", "purchase order": "po_id", "limit": "po_id"},
            )
    return await _orders_page(page, errors, values)
