"""The member's learning pages: the course catalogue and enrolment, the exams and buying one, the
transcript, and renewing a certification. Signed-in members only (each sees their own records)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.site import Page, member_page

__all__ = ["router", "valid_id"]

router = APIRouter(include_in_schema=False)

Member = Annotated[Page, Depends(member_page)]

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def valid_id(value: str) -> str:
    """A path segment naming a record; anything else is a page that does not exist (never passed on)."""
    if not _ID.match(value) or value in (".", ".."):
        raise ServiceError(404, "not_found", "there is no such page")
    return value


async def _transcript(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.services.get("learning", f"/members/{page.member_id}/transcript")
    return found


@router.get("/courses")
async def courses(page: Member) -> Response:
    catalogue, transcript = await asyncio.gather(page.services.get("learning", "/courses"), _transcript(page))
    enrolled = {e["course_id"] for e in transcript["enrollments"]}
    completed = {c["course_id"] for c in transcript["completions"]}
    return page.render(
        "portal/courses.html",
        title="Courses",
        courses=catalogue,
        enrolled=enrolled,
        completed=completed,
        total_units=transcript["total_units"],
    )


@router.post("/courses/{course_id}/enrol")
async def enrol(course_id: str, page: Member) -> Response:
    await page.form()
    course_id = valid_id(course_id)
    await page.services.get("learning", f"/courses/{course_id}")  # 404 for a course that does not exist
    order = await page.services.post(
        "commerce", "/orders", {"lines": [{"kind": "course_seat", "reference": course_id}]}
    )
    return page.redirect(f"/orders/{order['order_id']}/pay")


@router.get("/exams")
async def exams(page: Member) -> Response:
    listed, transcript, programs = await asyncio.gather(
        page.services.get("learning", "/exams"), _transcript(page), page.services.get("certification", "/programs")
    )
    names = {p["code"]: p["name"] for p in programs}
    return page.render(
        "portal/exams.html",
        title="Certification exams",
        exams=listed,
        names=names,
        available=transcript["exam_attempts_available"],
        attempts=transcript["attempts"],
    )


@router.post("/exams/{exam_id}/buy")
async def buy_exam(exam_id: str, page: Member) -> Response:
    await page.form()
    exam_id = valid_id(exam_id)
    order = await page.services.post("commerce", "/orders", {"lines": [{"kind": "exam_fee", "reference": exam_id}]})
    return page.redirect(f"/orders/{order['order_id']}/pay")


@router.get("/exams/{exam_id}/sit")
async def sit_exam_page(exam_id: str, page: Member) -> Response:
    """The paper of an exam the member has a paid attempt for (409 from learning otherwise)."""
    exam_id = valid_id(exam_id)
    paper = await page.services.get("learning", f"/exams/{exam_id}/paper")
    return page.render("portal/sit_exam.html", title=f"{paper['title']}", paper=paper)


@router.post("/exams/{exam_id}/sit")
async def sit_exam(exam_id: str, page: Member) -> Response:
    """Hand the answers in: learning scores them as one paid attempt; the result shows on the exams page."""
    form = await page.form()
    exam_id = valid_id(exam_id)
    paper = await page.services.get("learning", f"/exams/{exam_id}/paper")
    answers: list[int | None] = []
    for question in paper["questions"]:
        chosen = form.get(f"q{question['number']}")
        # an unanswered question scores nothing; a value that is not a choice is refused by learning
        answers.append(int(chosen) if isinstance(chosen, str) and chosen.isdigit() and len(chosen) < 3 else None)
    result = await page.services.post("learning", f"/exams/{exam_id}/sittings", {"answers": answers})
    return page.redirect("/exams?notice=" + ("exam-passed" if result["passed"] else "exam-not-passed"))


@router.get("/transcript")
async def transcript(page: Member) -> Response:
    found = await _transcript(page)
    return page.render("portal/transcript.html", title="Your transcript", transcript=found)


@router.post("/certifications/{certification_id}/renew")
async def renew(certification_id: str, page: Member) -> Response:
    await page.form()
    certification_id = valid_id(certification_id)
    await page.services.post("certification", f"/certifications/{certification_id}/renew")
    return page.redirect("/account?notice=renewed")
