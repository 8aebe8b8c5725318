"""The member's uploads: the upload form, the gallery of thumbnails, and the images themselves.

The browser has no token to show the media service, so images are fetched here with the signed-in
member's token and passed on (the media service decides who may see what: an owner their own
uploads, everyone a processed one).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.courses import valid_id
from scte.web.forms import errors_from, text
from scte.web.site import Page, member_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Member = Annotated[Page, Depends(member_page)]

RENDITIONS = frozenset({"thumb", "small", "medium", "large"})
MAX_UPLOAD = 25 * 1024 * 1024


def _gallery(
    page: Page, items: list[dict[str, object]], errors: dict[str, str], title: str = "", status: int = 200
) -> Response:
    return page.render(
        "portal/gallery.html", status=status, title="Your gallery", items=items, errors=errors, title_value=title
    )


@router.get("/gallery")
async def gallery(page: Member) -> Response:
    items = await page.services.get("media", f"/members/{page.member_id}/media")
    return _gallery(page, items, {})


@router.post("/gallery")
async def upload(page: Member) -> Response:
    form = await page.form()
    upload = form.get("file")
    title = text(form, "title", 200)
    errors: dict[str, str] = {}
    if isinstance(upload, str) or upload is None or not upload.filename:
        errors["file"] = "Choose an image or a PDF to upload"
    else:
        data = await upload.read(MAX_UPLOAD + 1)
        if not data:
            errors["file"] = "The chosen file is empty"
        else:
            files = {"file": (upload.filename, data, upload.content_type or "application/octet-stream")}
            try:
                await page.services.call("POST", "media", "/media", files=files, data={"title": title})
                return page.redirect("/gallery?notice=uploaded")
            except ServiceError as exc:
                if exc.status in (401, 403):
                    raise
                errors = errors_from(exc, ("file", "title"), {"upload": "file", "image": "file", "larger": "file"})
                if "_form" in errors:
                    errors = {"file": errors["_form"]}
    items = await page.services.get("media", f"/members/{page.member_id}/media")
    return _gallery(page, items, errors, title, status=400)


@router.get("/media/{media_id}/{rendition}")
async def image(media_id: str, rendition: str, page: Member) -> Response:
    media_id = valid_id(media_id)
    if rendition not in RENDITIONS and rendition != "original":
        raise ServiceError(404, "not_found", "there is no such image")
    path = f"/media/{media_id}/original" if rendition == "original" else f"/media/{media_id}/renditions/{rendition}"
    answer = await page.services.call("GET", "media", path)
    content_type = answer.headers.get("content-type", "application/octet-stream")
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if not content_type.startswith("image/"):
        # a PDF (or anything not an image) is downloaded, never shown inline on this origin
        headers["Content-Disposition"] = "attachment"
    return Response(answer.content, media_type=content_type, headers=headers)
