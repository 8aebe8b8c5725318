"""The media REST API: upload (multipart), read an upload's state and renditions, download files.

An upload is validated by the domain (declared type allowed, size within its limit, first bytes
matching the type) before anything is stored; media.uploaded then lets the worker make the
renditions. Processed media can be seen by any signed-in member; an upload still processing or
refused only by its owner and staff."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.contracts.media import MediaUploaded
from scte.kit.app import MAX_UPLOAD_BODY_SIZE, Context, DbSession, ErrorOut, NotFound, ServiceContext
from scte.kit.auth import CurrentPrincipal, Principal, ensure_self_or_staff

from .db import media, renditions
from .domain import MAX_BYTES, UploadRejected, storage_key, validate_upload
from .handlers import TOPIC
from .storage import FileStorage

__all__ = ["router"]

router = APIRouter(tags=["media"])

IdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
MemberPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
CHUNK = 1024 * 1024


class RenditionOut(BaseModel):
    name: str
    width: int
    height: int
    content_type: str
    size_bytes: int
    url: str


class MediaOut(BaseModel):
    media_id: str
    owner_id: str | None
    """Shown to the uploader and staff only: a processed upload is visible to every signed-in member,
    and its owner's member id would name a member who chose not to be listed in the directory."""
    filename: str
    title: str
    content_type: str
    size_bytes: int
    sha256: str
    status: str
    error: str | None
    width: int | None
    height: int | None
    uploaded_at: datetime
    processed_at: datetime | None
    url: str
    renditions: list[RenditionOut]


def _storage(ctx: ServiceContext) -> FileStorage:
    storage = ctx.extras["storage"]
    assert isinstance(storage, FileStorage)
    return storage


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The file's bytes, reading at most one byte past `limit` (enough to refuse it)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await upload.read(min(CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


async def _load(session: AsyncSession, media_id: str, principal: Principal) -> Any:
    row = (await session.execute(select(media).where(media.c.media_id == media_id))).first()
    if row is None or (row.status != "processed" and row.owner_id != principal.member_id and not principal.is_staff):
        raise NotFound(f"no media {media_id}")
    return row


async def _out(session: AsyncSession, row: Any, principal: Principal) -> MediaOut:
    made = await session.execute(
        select(renditions).where(renditions.c.media_id == row.media_id).order_by(renditions.c.width)
    )
    return MediaOut(
        media_id=row.media_id,
        owner_id=row.owner_id if principal.member_id == row.owner_id or principal.is_staff else None,
        filename=row.filename,
        title=row.title,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        status=row.status,
        error=row.error,
        width=row.width,
        height=row.height,
        uploaded_at=row.uploaded_at,
        processed_at=row.processed_at,
        url=f"/media/{row.media_id}/original",
        renditions=[
            RenditionOut(
                name=r.name,
                width=r.width,
                height=r.height,
                content_type=r.content_type,
                size_bytes=r.size_bytes,
                url=f"/media/{row.media_id}/renditions/{r.name}",
            )
            for r in made
        ],
    )


@router.post(
    "/media",
    status_code=201,
    summary="Upload an image or a PDF (multipart: file, title)",
    responses={415: {"model": ErrorOut, "description": "A type that cannot be uploaded"}},
    max_body_size=MAX_UPLOAD_BODY_SIZE,
)
async def upload(
    ctx: Context,
    session: DbSession,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="JPEG, PNG, GIF, WebP or PDF")],
    title: Annotated[str, Form(max_length=200)] = "",
) -> MediaOut:
    declared = file.content_type or ""
    limit = max(MAX_BYTES.values())
    data = await _read_limited(file, limit)
    try:
        content_type = validate_upload(declared, len(data), data[:16])
    except UploadRejected as exc:
        status = 413 if "larger than" in str(exc) else 415 if "cannot be uploaded" in str(exc) else 400
        raise _rejected(str(exc), status) from None
    media_id = uuid.uuid4().hex
    key = storage_key(media_id, "original", content_type)
    filename = (file.filename or f"upload.{key.rsplit('.', 1)[1]}").replace("/", "_").replace("\\", "_")[-255:]
    now = ctx.clock.now()
    digest = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(_storage(ctx).write, key, data)
    values = {
        "media_id": media_id,
        "owner_id": principal.member_id,
        "filename": filename,
        "title": title.strip(),
        "content_type": content_type,
        "size_bytes": len(data),
        "sha256": digest,
        "storage_key": key,
        "status": "uploaded",
        "uploaded_at": now,
    }
    async with session.begin():
        await session.execute(media.insert().values(**values))
        await ctx.publisher.publish(
            session,
            MediaUploaded(
                media_id=media_id,
                owner_id=principal.member_id,
                filename=filename,
                title=title.strip(),
                content_type=content_type,
                size_bytes=len(data),
                sha256=digest,
                storage_key=key,
                uploaded_at=now,
            ),
            topic=TOPIC,
        )
        row = (await session.execute(select(media).where(media.c.media_id == media_id))).one()
        return await _out(session, row, principal)


def _rejected(message: str, status: int) -> Exception:
    from scte.kit.app import ApiError

    error = ApiError(message, code="upload_rejected")
    error.status_code = status
    return error


@router.get("/media/{media_id}", summary="An upload: its state and renditions")
async def get_media(media_id: IdPath, session: DbSession, principal: CurrentPrincipal) -> MediaOut:
    return await _out(session, await _load(session, media_id, principal), principal)


@router.get("/media/{media_id}/original", summary="The uploaded file", response_class=FileResponse)
async def original(media_id: IdPath, ctx: Context, session: DbSession, principal: CurrentPrincipal) -> FileResponse:
    row = await _load(session, media_id, principal)
    return FileResponse(_storage(ctx).path(row.storage_key), media_type=row.content_type, filename=row.filename)


@router.get(
    "/media/{media_id}/renditions/{name}",
    summary="A rendition (thumb, small, medium, large)",
    response_class=FileResponse,
)
async def rendition(
    media_id: IdPath,
    name: Annotated[str, Path(pattern=r"^(thumb|small|medium|large)$")],
    ctx: Context,
    session: DbSession,
    principal: CurrentPrincipal,
) -> FileResponse:
    await _load(session, media_id, principal)
    row = (
        await session.execute(select(renditions).where(renditions.c.media_id == media_id, renditions.c.name == name))
    ).first()
    if row is None:
        raise NotFound(f"media {media_id} has no {name} rendition (yet)")
    return FileResponse(_storage(ctx).path(row.storage_key), media_type=row.content_type)


@router.get("/members/{member_id}/media", summary="A member's uploads, newest first (self or staff)")
async def member_media(
    member_id: MemberPath,
    session: DbSession,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 60,
) -> list[MediaOut]:
    ensure_self_or_staff(principal, member_id)
    rows = (
        await session.execute(
            select(media)
            .where(media.c.owner_id == member_id)
            .order_by(media.c.uploaded_at.desc(), media.c.media_id)
            .limit(limit)
        )
    ).all()
    return [await _out(session, row, principal) for row in rows]
