"""The staff pages (`/staff`): member administration (roles, exam results, completed courses),
companies, courses, the exams' papers with their keys, reports with CSV download, and the month's invoices.

Who may open them: staff only (a member or a company admin gets 403, a signed-out visitor sign-in).
Recording an exam result or a completed course here is what the test centre and the course system do
through the same API.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.courses import valid_id
from scte.web.forms import errors_from, required, text
from scte.web.site import Page, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

PAGE_SIZE = 50
STAFF_ROLES = ("member", "staff")


@router.get("/staff")
async def staff_home(page: Staff, offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None) -> Response:
    if offset is None:  # newest first: the last page of the registration order
        first = await page.services.get("members", "/members", limit=1, offset=0)
        offset = max(0, int(first["total"]) - PAGE_SIZE)
    found = await page.services.get("members", "/members", limit=PAGE_SIZE, offset=offset)
    return page.render(
        "staff/home.html",
        title="Staff",
        members=list(reversed(found["items"])),
        total=found["total"],
        offset=offset,
        size=PAGE_SIZE,
    )


async def _member_page(page: Page, member_id: str, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    s = page.services
    member, transcript, certifications, exams, courses = await asyncio.gather(
        s.get("members", f"/members/{member_id}"),
        s.get("learning", f"/members/{member_id}/transcript"),
        s.get("certification", f"/members/{member_id}/certifications"),
        s.get("learning", "/exams"),
        s.get("learning", "/courses"),
    )
    return page.render(
        "staff/member.html",
        status=status,
        title=member["display_name"],
        member=member,
        transcript=transcript,
        certifications=certifications,
        exams=exams,
        courses=courses,
        errors=errors or {},
        staff_roles=STAFF_ROLES,
        exam_options=[(e["exam_id"], f"{e['exam_id']}: {e['title']} ({e['questions']} questions)") for e in exams],
        course_options=[(c["course_id"], f"{c['title']} ({c['units']} units)") for c in courses],
    )


@router.get("/staff/members/{member_id}")
async def member(member_id: str, page: Staff) -> Response:
    return await _member_page(page, valid_id(member_id))


@router.post("/staff/members/{member_id}/attempts")
async def record_attempt(member_id: str, page: Staff) -> Response:
    form = await page.form()
    member_id = valid_id(member_id)
    exam_id = text(form, "exam_id", 10)
    correct = text(form, "correct", 10)
    errors = required(
        {"exam_id": exam_id, "correct": correct}, {"exam_id": "the exam", "correct": "the correct answers"}
    )
    if not errors and not correct.isdigit():
        errors["correct"] = "The correct answers must be a whole number"
    if not errors:
        try:
            await page.services.post(
                "learning", f"/exams/{valid_id(exam_id)}/attempts", {"member_id": member_id, "correct": int(correct)}
            )
            return page.redirect(f"/staff/members/{member_id}?notice=attempt")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(
                exc, ("exam_id", "correct"), {"exam": "exam_id", "question": "correct", "fee": "exam_id"}
            )
    return await _member_page(page, member_id, errors, status=400)


@router.post("/staff/members/{member_id}/completions")
async def record_completion(member_id: str, page: Staff) -> Response:
    form = await page.form()
    member_id = valid_id(member_id)
    course_id = text(form, "course_id", 128)
    errors = required({"course_id": course_id}, {"course_id": "the course"})
    if not errors:
        try:
            await page.services.post("learning", "/completions", {"member_id": member_id, "course_id": course_id})
            return page.redirect(f"/staff/members/{member_id}?notice=completed")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(exc, ("course_id",), {"course": "course_id", "enrol": "course_id"})
    return await _member_page(page, member_id, errors, status=400)


@router.post("/staff/members/{member_id}/roles")
async def set_roles(member_id: str, page: Staff) -> Response:
    form = await page.form()
    member_id = valid_id(member_id)
    roles = sorted({r for r in form.getlist("roles") if isinstance(r, str) and r in STAFF_ROLES} | {"member"})
    try:
        await page.services.put("members", f"/members/{member_id}/roles", {"roles": roles})
    except ServiceError as exc:
        if exc.status in (401, 403):
            raise
        return await _member_page(page, member_id, {"roles": exc.message}, status=400)
    return page.redirect(f"/staff/members/{member_id}?notice=role")


# -- companies -----------------------------------------------------------------------------------------


@router.get("/staff/companies")
async def companies(page: Staff) -> Response:
    found = await page.services.get("companies", "/companies")
    return page.render("staff/companies.html", title="Companies", companies=found, values={}, errors={})


@router.post("/staff/companies")
async def create_company(page: Staff) -> Response:
    form = await page.form()
    values = {"name": text(form, "name", 200), "admin_member_id": text(form, "admin_member_id", 128)}
    errors = required(values, {"name": "the company's name"})
    if not errors:
        body: dict[str, Any] = {"name": values["name"]}
        if values["admin_member_id"]:
            body["admin_member_id"] = values["admin_member_id"]
        try:
            await page.services.post("companies", "/companies", body)
            return page.redirect("/staff/companies?notice=company")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(
                exc, ("name", "admin_member_id"), {"admin": "admin_member_id", "member": "admin_member_id"}
            )
    found = await page.services.get("companies", "/companies")
    return page.render(
        "staff/companies.html", status=400, title="Companies", companies=found, values=values, errors=errors
    )


# -- courses -------------------------------------------------------------------------------------------


@router.get("/staff/courses")
async def courses(page: Staff) -> Response:
    found = await page.services.get("learning", "/courses", include_closed="true")
    return page.render("staff/courses.html", title="Courses", courses=found, values={}, errors={})


@router.post("/staff/courses")
async def save_course(page: Staff) -> Response:
    form = await page.form()
    values = {
        "course_id": text(form, "course_id", 128),
        "title": text(form, "title", 200),
        "units": text(form, "units", 10),
        "description": text(form, "description", 5000),
    }
    errors = required(values, {"course_id": "a course code", "title": "a title", "units": "the units"})
    if "units" not in errors and not values["units"].isdigit():
        errors["units"] = "The units must be a whole number"
    if "course_id" not in errors:
        try:
            valid_id(values["course_id"])
        except ServiceError:
            errors["course_id"] = "A course code has letters, digits, dots, dashes or colons only"
    if not errors:
        body = {"title": values["title"], "units": int(values["units"]), "description": values["description"]}
        try:
            await page.services.put("learning", f"/courses/{values['course_id']}", body)
            return page.redirect("/staff/courses?notice=course")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(exc, ("course_id", "title", "units", "description"), {"unit": "units"})
    found = await page.services.get("learning", "/courses", include_closed="true")
    return page.render("staff/courses.html", status=400, title="Courses", courses=found, values=values, errors=errors)


# -- reports and invoices ------------------------------------------------------------------------------


@router.get("/staff/exams")
async def exams(page: Staff) -> Response:
    found = await page.services.get("learning", "/exams")
    return page.render("staff/exams.html", title="Exams", exams=found)


@router.get("/staff/exams/{exam_id}")
async def exam_paper(exam_id: str, page: Staff) -> Response:
    """One exam's paper with its key: what members sit from the portal (the key is never sent to them)."""
    exam_id = valid_id(exam_id)
    questions = await page.services.get("learning", f"/exams/{exam_id}/questions")
    return page.render("staff/exam.html", title=f"{exam_id} paper", exam_id=exam_id, questions=questions)


@router.get("/staff/reports")
async def reports(page: Staff) -> Response:
    names = await page.services.get("reports", "/reports")
    run = page.request.query_params.get("run")
    return page.render("staff/reports.html", title="Reports", reports=names, run=run, errors={})


@router.get("/staff/reports/{name}.csv")
async def report_csv(name: str, page: Staff) -> Response:
    answer = await page.services.call("GET", "reports", f"/reports/{valid_id(name)}.csv")
    return Response(
        answer.content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{valid_id(name)}.csv"', "Cache-Control": "no-store"},
    )


@router.post("/staff/reports/{name}/runs")
async def run_report(name: str, page: Staff) -> Response:
    await page.form()
    run = await page.services.post("reports", f"/reports/{valid_id(name)}/runs")
    return page.redirect(f"/staff/reports?notice=report&run={run['report_id']}")


@router.get("/staff/reports/runs/{report_id}.csv")
async def run_csv(report_id: str, page: Staff) -> Response:
    answer = await page.services.call("GET", "reports", f"/reports/runs/{valid_id(report_id)}.csv")
    return Response(
        answer.content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="report-{report_id}.csv"', "Cache-Control": "no-store"},
    )


@router.post("/staff/invoices")
async def issue_invoices(page: Staff) -> Response:
    form = await page.form()
    month = text(form, "month", 7) or datetime.now(UTC).strftime("%Y-%m")
    try:
        await page.services.call("POST", "commerce", "/invoices/issue", params={"month": month})
    except ServiceError as exc:
        if exc.status in (401, 403):
            raise
        names = await page.services.get("reports", "/reports")
        return page.render(
            "staff/reports.html", status=400, title="Reports", reports=names, run=None, errors={"month": exc.message}
        )
    return page.redirect("/staff/reports?notice=invoices")
