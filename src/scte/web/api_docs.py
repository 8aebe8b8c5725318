"""The gateway's API documents: one for the whole platform at `/openapi.json` (Swagger at `/docs`), and
each service's own at `/api/<service>/openapi.json` with the gateway's prefix as its server.

The combined document is made from the services' own documents, asked for over the gateway's
connections and kept `CACHE_SECONDS`; a service that does not answer is left out and named in the
description (asked again on the next request). Who may call: everyone (the documents grant nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from scte.kit.app import ErrorOut, error_body
from scte.kit.docs import combined_document, install_swagger_page, with_prefix

__all__ = ["CACHE_SECONDS", "GATEWAY_PATHS", "install_api_docs"]

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
GATEWAY_PATHS = frozenset({"/health", "/api"})
"""The gateway's own operations in the combined document (the website's pages are not API)."""


def install_api_docs(app: FastAPI, clients: Mapping[str, httpx.AsyncClient]) -> None:
    """`/openapi.json`, `/docs` and `/api/<service>/openapi.json` on the gateway `app` (created with
    `openapi_url=None`); call before the proxy route so these paths are not forwarded as they are."""
    cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def service_document(name: str) -> dict[str, Any] | None:
        cached = cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        client = clients.get(name)
        if client is None:
            return None
        try:
            response = await client.get("/openapi.json", timeout=5.0)
            document = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.info("gateway docs: %s has no document now: %s", name, exc)
            return None
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            return None
        cache[name] = (time.monotonic(), document)
        return document

    def own_document() -> dict[str, Any]:
        routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path in GATEWAY_PATHS]
        return get_openapi(
            title="SCTE Platform API",
            version=app.version,
            description="Every service's REST API through the gateway: `/api/<service>/<path>`. "
            "Sign in with `POST /api/members/sessions`, then send the token as `Authorization: Bearer <token>` "
            "(the Authorize button). Each service's own document: `/api/<service>/openapi.json`.",
            routes=routes,
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def platform_document() -> JSONResponse:
        names = list(clients)
        found = await asyncio.gather(*(service_document(name) for name in names))
        documents = {name: doc for name, doc in zip(names, found, strict=True) if doc is not None}
        error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        combined = combined_document(
            own_document(),
            documents,
            unavailable=[name for name in names if name not in documents],
            error_schema=error,
        )
        return JSONResponse(combined)

    @app.get("/api/{service}/openapi.json", include_in_schema=False)
    async def prefixed_document(service: str) -> JSONResponse:
        if service not in clients:
            return JSONResponse(error_body("not_found", f"no service {service!r}"), status_code=404)
        document = await service_document(service)
        if document is None:
            return JSONResponse(error_body("unavailable", f"{service} is not reachable now"), status_code=503)
        return JSONResponse(with_prefix(document, f"/api/{service}"))

    install_swagger_page(app, title="SCTE Platform API")
