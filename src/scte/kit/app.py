"""The FastAPI application of a service: `/health`, OpenAPI, uniform errors, request dependencies.

Every 4xx answer has the same body, `{"error": "<code>", "message": "<for a person>"}` (422 adds
`details`), so the portal and the tests read any service's refusals alike. Bad input never becomes a
500: validation errors are 422, domain rule violations 400 (or what the service maps them to),
missing things 404, conflicts 409, no token 401, a token without the right 403.

Routes reach the service's machinery through dependencies:

    @router.post("/members", status_code=201)
    async def register(body: RegisterIn, ctx: Context, session: DbSession) -> MemberOut:
        async with session.begin():
            ...
            await ctx.publisher.publish(session, MemberRegistered(...), topic="members")
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from scte.kit.auth import AuthError, Forbidden, TokenIssuer, TokenVerifier
from scte.kit.docs import install_docs
from scte.kit.metrics import install_metrics_route
from scte.kit.observability import RequestObserver

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

    from scte.bus.publisher import OutboxRelay, Publisher
    from scte.bus.topology import Topology
    from scte.bus.transport import Transport
    from scte.kit.clock import Clock
    from scte.kit.settings import Settings

__all__ = [
    "MAX_BODY_SIZE",
    "MAX_UPLOAD_BODY_SIZE",
    "SHARED_RESPONSES",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Context",
    "DbSession",
    "ErrorOut",
    "NotFound",
    "ServiceContext",
    "ServiceUnavailable",
    "create_app",
    "error_body",
    "get_context",
    "get_session",
]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_BODY_SIZE = 1 * MIB
"""The largest request body a route takes unless it says otherwise (JSON and forms are far smaller).
Refused with 413 before it is read: by its Content-Length at once, a chunked body as soon as it passes
the limit, so a large body is never buffered (FastAPI's `max_body_size`, Starlette's body limiter)."""
MAX_UPLOAD_BODY_SIZE = 25 * MIB + 256 * 1024
"""The body limit of a route taking a file: the largest file a service accepts (a 25 MiB PDF) and
the multipart envelope around it. The route states it: `@router.post(..., max_body_size=...)`."""

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class ApiError(Exception):
    """An error a route raises on purpose; answered as `{"error": code, "message": message}`."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "unavailable"


@dataclass
class ServiceContext:
    """What a running service is made of; routes get it with the `Context` dependency, handlers get
    its parts by name (`clock`, `settings`, ...)."""

    name: str
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    topology: Topology
    transport: Transport
    publisher: Publisher
    relay: OutboxRelay
    verifier: TokenVerifier | None = None
    issuer: TokenIssuer | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def publish_in(self, session: AsyncSession) -> Callable[..., Awaitable[Any]]:
        """`publish(event, topic=...)` into this session's transaction (the outbox); the relay is woken
        when it commits. The same shape as a handler's `publish`, so helpers serve both."""
        publisher = self.publisher

        async def publish(event: Any, *, topic: str) -> Any:
            return await publisher.publish(session, event, topic=topic)

        return publish


def get_context(request: Request) -> ServiceContext:
    context = getattr(request.app.state, "context", None)
    if not isinstance(context, ServiceContext):
        raise ServiceUnavailable("the service is starting")
    return context


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for this request (the route opens its transaction: `async with session.begin()`)."""
    context = get_context(request)
    async with context.sessionmaker() as session:
        yield session


Context = Annotated[ServiceContext, Depends(get_context)]
DbSession = Annotated[AsyncSession, Depends(get_session)]


class ErrorOut(BaseModel):
    """The body of every refusal, in every service."""

    error: str
    """A short code: bad_request, unauthorized, forbidden, not_found, conflict, invalid_request..."""
    message: str
    """What went wrong, for a person."""
    details: list[dict[str, Any]] | None = None
    """With invalid_request (422): one entry per invalid field (loc, msg, type)."""


SHARED_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "A rule refuses the request"),
        (401, "No valid token"),
        (403, "The token may not do this"),
        (404, "Not found"),
        (409, "Conflicts with the current state"),
        (413, "The request body is too large"),
        (422, "The request is malformed (details per field)"),
        (429, "Too many requests; retry after the Retry-After header's seconds"),
        (503, "The service is starting or a dependency is unavailable"),
    )
}
"""Documented on every route of every service (the refusals any route may give), so a client and the
fuzzing gate read them from the OpenAPI document; a route may add its own."""


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{location or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI, domain_errors: Mapping[type[Exception], int]) -> None:
    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status_code)

    async def auth_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body("unauthorized", str(exc)), status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    async def forbidden(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("forbidden", str(exc)), status_code=403)

    async def validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors
        ]
        return JSONResponse(
            error_body("invalid_request", _validation_message(errors), details=details), status_code=422
        )

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(
            error_body(_status_code_name(exc.status_code), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    def domain(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse(error_body(_status_code_name(status), str(exc)), status_code=status)

        return handler

    async def client_gone(request: Request, _exc: Exception) -> JSONResponse:
        # not a fault of ours: the client (or the gateway, refusing a body over its limit) hung up mid-body
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return JSONResponse(error_body("client_disconnected", "the request body did not arrive whole"), 400)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal_error", "something went wrong on our side"), status_code=500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(AuthError, auth_error)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for error_type, status in domain_errors.items():
        app.add_exception_handler(error_type, domain(status))
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, unexpected)


def _metrics_token_path(request: Request) -> Path | None:
    """The install's metrics token file, from the running service's settings (`app.state.metrics_token`
    overrides it: the gateway, tests)."""
    given = getattr(request.app.state, "metrics_token_path", None)
    if isinstance(given, Path):
        return given
    context = getattr(request.app.state, "context", None)
    return context.settings.metrics_token_path if isinstance(context, ServiceContext) else None


def create_app(
    service: str,
    routers: Sequence[APIRouter] = (),
    lifespan: Lifespan | None = None,
    *,
    domain_errors: Mapping[type[Exception], int] | None = None,
    verifier: TokenVerifier | None = None,
    health: HealthCheck | None = None,
    version: str = "1.0.0",
    max_body_size: int = MAX_BODY_SIZE,
) -> FastAPI:
    """The service's FastAPI app: its routers, `/health`, OpenAPI at `/openapi.json` and `/docs`.

    `domain_errors` maps the service's rule violations to a status (e.g. `{MembersError: 400}`).
    `verifier` checks tokens (it can also be set later as `app.state.token_verifier`); `health`
    adds the service's own checks to `/health` (a `status` other than "ok" answers 503). A request
    body larger than `max_body_size` (or its route's own `max_body_size`) is answered 413. Every request
    is traced, timed and logged (`scte.kit.observability`); `/metrics` is for the install's metrics
    token and staff (`scte.kit.metrics`)."""
    app = FastAPI(
        title=f"SCTE {service}",
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        max_body_size=max_body_size,
    )
    install_docs(app)
    app.add_middleware(RequestObserver, service=service)  # spans, latency, correlation, the access line
    install_metrics_route(app, service, _metrics_token_path)
    app.state.service = service
    app.state.token_verifier = verifier
    app.state.health = health
    _install_error_handlers(app, dict(domain_errors or {}))

    @app.get(
        "/health",
        tags=["health"],
        summary="Liveness and readiness of the service",
        responses={503: {"description": "A check of the service is failing"}},
    )
    async def health_route(request: Request) -> JSONResponse:
        check: HealthCheck | None = request.app.state.health
        body: dict[str, Any] = {"service": service, "status": "ok"}
        if check is not None:
            try:
                body.update(await check())
            except Exception as exc:
                body.update(status="failing", error=str(exc))
        return JSONResponse(body, status_code=200 if body.get("status") == "ok" else 503)

    for router in routers:
        app.include_router(router, responses=SHARED_RESPONSES)
    return app
