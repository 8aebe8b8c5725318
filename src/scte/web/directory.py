"""Search (the member directory by name, city or designation, courses, media) and the member's profile.
Signed-in members only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.forms import errors_from, text
from scte.web.site import Page, member_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Member = Annotated[Page, Depends(member_page)]

KINDS = {"member": "Members", "course": "Courses", "media": "Media"}


@router.get("/search")
async def search(page: Member, q: Annotated[str, Query(max_length=400)] = "") -> Response:
    query = q.strip()
    results: list[dict[str, Any]] = []
    error = ""
    if query:
        try:
            found = await page.services.get("search", "/search", q=query, limit=50)
            results = found["results"]
        except ServiceError as exc:
            if exc.status not in (400, 422):
                raise
            error = exc.message[:1].upper() + exc.message[1:]
    groups = {kind: [r for r in results if r["kind"] == kind] for kind in KINDS}
    return page.render(
        "portal/search.html",
        title="Search",
        q=query,
        groups=groups,
        kinds=KINDS,
        errors={"q": error} if error else {},
        searched=bool(query) and not error,
    )


_PROFILE_FIELDS = ("display_name", "city", "country")


@router.get("/profile")
async def profile(page: Member) -> Response:
    me = await page.services.get("members", "/me")
    values = {**{k: me.get(k) or "" for k in _PROFILE_FIELDS}, "listed": me["listed_in_directory"]}
    return page.render("portal/profile.html", title="Your profile", values=values, errors={}, me=me)


@router.post("/profile")
async def save_profile(page: Member) -> Response:
    form = await page.form()
    values: dict[str, Any] = {k: text(form, k, 300) for k in _PROFILE_FIELDS}
    values["listed"] = form.get("listed_in_directory") == "yes"
    errors: dict[str, str] = {}
    if not values["display_name"]:
        errors["display_name"] = "Enter your name"
    else:
        body = {
            "display_name": values["display_name"],
            "city": values["city"] or None,
            "country": values["country"].upper() or None,
            "listed_in_directory": values["listed"],
        }
        try:
            await page.services.patch("members", f"/members/{page.member_id}", body)
            return page.redirect("/profile?notice=profile")
        except ServiceError as exc:
            if exc.status in (401, 403):
                raise
            errors = errors_from(exc, _PROFILE_FIELDS, {"name": "display_name"})
    me = await page.services.get("members", "/me")
    return page.render("portal/profile.html", status=400, title="Your profile", values=values, errors=errors, me=me)
