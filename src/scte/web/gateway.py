"""The gateway: one origin (127.0.0.1:8000) for the website and every service's REST API.

`/api/<service>/<path>` is forwarded to `http://127.0.0.1:<service port>/<path>` with the method,
query, body and the headers that matter (Authorization among them); the service's answer comes back
as it is. `/health` asks every service for its own and sums them up. The gateway holds no state and
checks no tokens: each service verifies the token it is given. `/openapi.json` and `/docs` document
every service's API in one place (`scte.web.api_docs`).

Every other path is the website (`scte.web.site`): the member portal at `/`, `/company`, `/staff`,
pages rendered here from the services' APIs, called over the same connections.

Request bodies are streamed to the service, never buffered here, and limited as the services limit
them (`MAX_BODY_SIZE`, `MAX_UPLOAD_BODY_SIZE` for the upload routes in `UPLOAD_ROUTES`): a larger
Content-Length is answered 413 at once, a chunked body as soon as it passes the limit.

The gateway states the visitor's address to the services: `X-Forwarded-For` set to the address the
request came from (a visitor's own header is never passed on) with the install's gateway secret, the
only proof the services believe (scte.kit.forwarding); their per-address limits key on it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scte.bus import observe
from scte.kit import observability, tracing
from scte.kit.app import MAX_BODY_SIZE, MAX_UPLOAD_BODY_SIZE, error_body
from scte.kit.forwarding import forwarded_headers, gateway_secret_path, read_gateway_secret
from scte.kit.metrics import install_metrics_route
from scte.kit.observability import CORRELATION_HEADER, RequestObserver
from scte.kit.settings import Settings, get_settings
from scte.platform import GATEWAY_PORT, SERVICES
from scte.web.api_docs import install_api_docs
from scte.web.console_rates import sampling

__all__ = ["UPLOAD_ROUTES", "create_gateway", "main", "service_urls"]

log = logging.getLogger(__name__)

_FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "accept-language", "if-none-match")
UPLOAD_ROUTES: tuple[tuple[str, str], ...] = (("POST", "/api/media/media"),)
"""The routes that take a file, with MAX_UPLOAD_BODY_SIZE; every other route takes MAX_BODY_SIZE."""
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "content-encoding"}
)


def service_urls(settings: Settings, services: list[str] | None = None) -> dict[str, str]:
    """name -> base URL of each service the gateway routes to (`SCTE_GATEWAY_SERVICES` narrows them)."""
    if services is None:
        listed = os.environ.get("SCTE_GATEWAY_SERVICES")
        services = [s for s in listed.split(",") if s] if listed else list(SERVICES)
    return {
        name: f"http://{settings.host}:{settings.port(name, SERVICES[name].port)}"
        for name in services
        if name in SERVICES
    }


async def _propagate(request: httpx.Request) -> None:
    """Every call to a service (a proxied API call, a page's call) carries the visitor's request's trace
    context and correlation id: the service's spans join the action's trace, its events its correlation."""
    if tracing.enabled():
        tracing.inject(request.headers)  # type: ignore[arg-type]  # httpx.Headers is a mutable mapping
    correlation = observe.correlation_id.get()
    if correlation is not None:
        request.headers[CORRELATION_HEADER] = correlation


def create_gateway(
    urls: Mapping[str, str],
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    data_dir: Path | None = None,
    public_key: Path | None = None,
    gateway_secret: str | None = None,
    broker_url: str | None = None,
) -> FastAPI:
    """The gateway app routing to `urls` (service name -> base URL); with `data_dir` (the install's
    secrets) and `public_key` (to know who signed in), the website too; with `gateway_secret`, the
    services believe the visitor's address it forwards; with `broker_url` and `data_dir`, the operations
    console's calls to the broker, signed with the admin key `scte up` keeps in `data_dir`."""
    routes = dict(urls)
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        for name, url in routes.items():
            clients[name] = httpx.AsyncClient(
                base_url=url,
                timeout=httpx.Timeout(timeout, connect=2.0),
                limits=limits,
                transport=transport,
                event_hooks={"request": [_propagate]},
            )
        try:
            async with sampling(_app):  # the console's rates: the broker's counters sampled (console_rates)
                yield
        finally:
            await asyncio.gather(*(c.aclose() for c in clients.values()))
            clients.clear()
            admin = getattr(_app.state, "broker_admin", None)
            if admin is not None:
                await admin.close()

    app = FastAPI(
        title="SCTE gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # scte.web.api_docs serves the platform's document instead
        max_body_size=MAX_BODY_SIZE,
    )
    # a visitor's request starts a user action: its correlation id (answered in X-Correlation-Id) and root span
    app.add_middleware(RequestObserver, service="gateway", entry=True)
    app.state.metrics_token_path = data_dir / "keys" / "metrics-token" if data_dir is not None else None
    install_metrics_route(app, "gateway", lambda request: request.app.state.metrics_token_path)

    @app.get(
        "/health",
        summary="Every service's health, summed up",
        responses={503: {"description": "A service is failing or down"}},
    )
    async def health() -> JSONResponse:
        async def one(name: str) -> tuple[str, dict[str, Any]]:
            try:
                response = await clients[name].get("/health", timeout=3.0)
                is_json = response.headers.get("content-type", "").startswith("application/json")
                body = response.json() if is_json else {}
                return name, {"status": body.get("status", "failing") if response.status_code == 200 else "failing"}
            except (httpx.HTTPError, ValueError) as exc:
                return name, {"status": "down", "error": type(exc).__name__}

        results = dict(await asyncio.gather(*(one(name) for name in routes)))
        ok = all(r["status"] == "ok" for r in results.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "services": results}, status_code=200 if ok else 503)

    @app.get("/api", summary="The services and where their APIs are")
    async def index() -> dict[str, Any]:
        return {"services": {name: f"/api/{name}/" for name in routes}}

    async def forward(service: str, path: str, request: Request) -> Response:
        client = clients.get(service)
        if client is None:
            return JSONResponse(error_body("not_found", f"no service {service!r}"), status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_REQUEST_HEADERS}
        headers["x-forwarded-prefix"] = f"/api/{service}"
        headers.update(forwarded_headers(request.client.host if request.client else None, gateway_secret))
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        if "content-length" in request.headers:
            headers["content-length"] = request.headers["content-length"]
        try:
            upstream = await client.request(
                request.method,
                "/" + path,
                params=httpx.QueryParams(str(request.query_params)),
                content=request.stream() if has_body else None,  # streamed through the body limit
                headers=headers,
            )
        except httpx.TimeoutException:
            return JSONResponse(error_body("gateway_timeout", f"{service} did not answer in time"), status_code=504)
        except httpx.HTTPError as exc:
            log.warning("gateway: %s unreachable: %s", service, exc)
            return JSONResponse(error_body("unavailable", f"{service} is not reachable now"), status_code=503)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(content=upstream.content, status_code=upstream.status_code, headers=out_headers)

    def upload_route(service: str, path: str) -> Callable[[Request], Awaitable[Response]]:
        async def upload(request: Request) -> Response:
            return await forward(service, path, request)

        return upload

    async def too_large(request: Request, exc: Exception) -> Response:
        """The services' uniform body for an API body over the limit; the website's pages answer theirs."""
        pages = app.exception_handlers.get(StarletteHTTPException)
        if not request.url.path.startswith("/api/") and pages is not None:
            answer = pages(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return JSONResponse(error_body("request_entity_too_large", str(getattr(exc, "detail", exc))), status_code=413)

    app.add_exception_handler(413, too_large)
    for method, route in UPLOAD_ROUTES:
        service, path = route.removeprefix("/api/").split("/", 1)
        app.add_api_route(
            route,
            upload_route(service, path),
            methods=[method],
            max_body_size=MAX_UPLOAD_BODY_SIZE,
            include_in_schema=False,
        )

    install_api_docs(app, clients)  # before the proxy: /api/<service>/openapi.json gets the gateway's prefix

    # not in the document itself: the services' operations stand there under /api/<service>
    @app.api_route(
        "/api/{service}/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def proxy(service: str, path: str, request: Request) -> Response:
        return await forward(service, path, request)

    if data_dir is not None:
        from scte.deploy.broker_keys import ADMIN, identity_dir
        from scte.kit.spanstore import SpanStore
        from scte.web import (
            company,
            console,
            console_mail,
            console_traces,
            courses,
            directory,
            gallery,
            inbox,
            portal,
            staff,
        )
        from scte.web.broker_admin import BrokerAdmin
        from scte.web.site import build_site, install_site

        app.state.span_store = SpanStore(console_traces.span_store_path(data_dir))  # the trace view reads it
        site = build_site(clients, data_dir, public_key or data_dir / "keys" / "jwt-ed25519.pub.pem")
        sections = [portal, courses, gallery, directory, inbox, company, staff, console, console_mail, console_traces]
        if broker_url:
            app.state.broker_admin = BrokerAdmin(broker_url, identity_dir(data_dir) / f"{ADMIN}.json")
        install_site(app, site, [section.router for section in sections])
    return app


def main() -> None:
    """`python -m scte.web.gateway`: serve on `SCTE_GATEWAY_PORT` (default 8000)."""
    settings = get_settings()
    observability.configure("gateway", settings)  # JSON log lines, spans
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to a service is noise, and costs
    app = create_gateway(
        service_urls(settings),
        data_dir=settings.data_dir,
        public_key=settings.public_key_path,
        gateway_secret=read_gateway_secret(gateway_secret_path(settings)),
        # the console's broker pages read the embedded broker with the owner's key; another broker has neither
        broker_url=settings.aws_endpoint_url if settings.broker == "embedded" else None,
    )
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port("gateway", GATEWAY_PORT),
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's lines as JSON too
        )
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
