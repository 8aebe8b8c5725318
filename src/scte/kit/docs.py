"""The service's Swagger page with swagger-ui served by the service itself, so it works offline.

FastAPI's own `/docs` loads swagger-ui from a CDN: with no internet the page stays blank. The assets
come from the `fastapi-offline` package (swagger-ui 5, which reads OpenAPI 3.1) and are served under
`/docs/static`. The page's URLs are relative to where it was opened, so the same page works at the
service's port (`/docs`) and through the gateway (`/api/<service>/docs`).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["SWAGGER_STATIC", "install_docs"]

SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """`GET /docs` (the Swagger page) and `/docs/static/*` (its scripts and styles) on `app`.

    The app must be created with `docs_url=None, redoc_url=None`."""
    app.mount("/docs/static", StaticFiles(directory=SWAGGER_STATIC), name="swagger-static")
    title = f"{app.title} - API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_page() -> HTMLResponse:
        # "docs/static/..." and "openapi.json" resolve against the page's own folder: `/` when opened
        # on the service, `/api/<service>/` when opened through the gateway.
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=title,
            swagger_js_url="docs/static/swagger-ui-bundle.js",
            swagger_css_url="docs/static/swagger-ui.css",
            swagger_favicon_url="docs/static/favicon.png",
        )
