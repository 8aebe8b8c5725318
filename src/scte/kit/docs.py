"""API documents and the Swagger page, served by the app itself so they work offline.

FastAPI's own `/docs` loads swagger-ui from a CDN: with no internet the page stays blank. The assets
come from the `fastapi-offline` package (swagger-ui 5, which reads OpenAPI 3.1) and are served under
`/docs/static`; the page starts swagger-ui from a script of its own (`/docs/swagger-init.js`), so it
needs no inline script and keeps a strict Content-Security-Policy. The page's URLs are relative to
where it was opened, so the same page works at the service's port (`/docs`), through the gateway
(`/api/<service>/docs`) and on the gateway itself (`/docs`, every service in one document).

A service's document states what the code enforces: the bearer scheme in `components.securitySchemes`
and `security` on exactly the operations whose route depends on `require_principal` (directly or
through `require_role`: it declares the scheme); `document_service` adds the scheme where no route
needs it and names the 401 answer's `WWW-Authenticate` header and the 429 answer's `Retry-After`.
`combined_document` merges the services' documents under their gateway prefixes (`/api/<service>/...`),
with operationIds and component names made unique by the service's name.

Who may call: everyone. The documents and the page describe the API; they grant nothing.
"""

from __future__ import annotations

import copy
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from scte.kit.auth import BEARER, BEARER_SCHEME_NAME

__all__ = [
    "BEARER_SCHEME",
    "DOCS_CSP",
    "HTTP_METHODS",
    "SWAGGER_STATIC",
    "combined_document",
    "document_service",
    "install_docs",
    "install_swagger_page",
    "with_prefix",
]

SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

BEARER_SCHEME: dict[str, Any] = BEARER.model.model_dump(mode="json", by_alias=True, exclude_none=True)
"""The OpenAPI security scheme `require_principal` declares (`components.securitySchemes.bearer`)."""

_SWAGGER_INIT = """\
// Starts swagger-ui on the document next to this page (relative: the same page serves a service at
// its own port, through the gateway at /api/<service>/docs, and the gateway's combined document).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""
_SWAGGER_INIT_HASH = hashlib.sha256(_SWAGGER_INIT.encode()).hexdigest()[:12]

DOCS_CSP = (
    # our own scripts only (no inline script); swagger-ui sets inline styles and shows data: images
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" href="docs/static/favicon.png">
</head>
<body>
<main id="swagger-ui" aria-label="{title}"></main>
<noscript><p>This page needs JavaScript.
The OpenAPI document itself: <a href="openapi.json">openapi.json</a>.</p></noscript>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/swagger-init.js?v={version}"></script>
</body>
</html>
"""


def install_swagger_page(app: FastAPI, title: str | None = None) -> None:
    """`GET /docs` (the Swagger page), `/docs/swagger-init.js` and `/docs/static/*` (swagger-ui's
    scripts and styles) on `app`; the page reads the `openapi.json` beside it. The app must be created
    with `docs_url=None, redoc_url=None`."""
    app.mount("/docs/static", StaticFiles(directory=SWAGGER_STATIC), name="swagger-static")
    page = _PAGE.format(title=html.escape(title or f"{app.title} - API"), version=_SWAGGER_INIT_HASH)

    @app.get("/docs", include_in_schema=False)
    async def swagger_page() -> HTMLResponse:
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @app.get("/docs/swagger-init.js", include_in_schema=False)
    async def swagger_init() -> Response:
        return Response(
            _SWAGGER_INIT,
            media_type="text/javascript",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=3600"},
        )


def install_docs(app: FastAPI) -> None:
    """A service's Swagger page (`install_swagger_page`) and its document's security declarations
    (`document_service`)."""
    install_swagger_page(app)
    document_service(app)


# -- a service's document ----------------------------------------------------------------------------------


_RESPONSE_HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "401": {"WWW-Authenticate": {"description": "`Bearer`: how to authenticate", "schema": {"type": "string"}}},
    "429": {
        "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}},
    },
}


def document_service(app: FastAPI) -> None:
    """Make `app.openapi()` declare the bearer scheme (even in a service none of whose routes needs a
    token) and the headers of the 401 and 429 answers. The operations needing a token carry `security`
    from their dependency on `require_principal` (it declares the scheme: `scte.kit.auth.BEARER`)."""
    build = app.openapi
    done: list[int] = []  # id() of the document last completed; FastAPI builds anew when routes change

    def openapi() -> dict[str, Any]:
        schema = build()
        if done != [id(schema)]:
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).setdefault(
                BEARER_SCHEME_NAME, BEARER_SCHEME
            )
            for _path, _method, operation in _operations(schema):
                for status, headers in _RESPONSE_HEADERS.items():
                    response = operation.get("responses", {}).get(status)
                    if response is not None and "$ref" not in response:
                        documented = response.setdefault("headers", {})
                        for name, header in headers.items():
                            documented.setdefault(name, header)
            done[:] = [id(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            if isinstance(item.get(method), dict):
                yield path, method, item[method]


# -- the gateway's documents -------------------------------------------------------------------------------


def with_prefix(schema: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """A service's document as seen through the gateway at `prefix` (`/api/<service>`): the server is
    the prefix, so Swagger's "Try it out" calls `/api/<service>/<path>`, not `/<path>` on the gateway."""
    shown = dict(schema)
    shown["servers"] = [{"url": prefix, "description": "Through the gateway"}]
    return shown


_COMPONENT_REF = re.compile(r"^#/components/([^/]+)/(.+)$")


def _renamed(node: Any, rename: Callable[[str, str], str]) -> Any:
    """`node` with every `#/components/<section>/<name>` reference (a `$ref`, or a discriminator's
    mapping value) pointing at `rename(section, name)`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and (m := _COMPONENT_REF.match(value)):
                out[key] = f"#/components/{m.group(1)}/{rename(m.group(1), m.group(2))}"
            elif key == "mapping" and isinstance(value, dict):
                out[key] = {
                    k: (f"#/components/{m.group(1)}/{rename(m.group(1), m.group(2))}" if m else v)
                    for k, v in value.items()
                    for m in [_COMPONENT_REF.match(v) if isinstance(v, str) else None]
                }
            else:
                out[key] = _renamed(value, rename)
        return out
    if isinstance(node, list):
        return [_renamed(v, rename) for v in node]
    return node


_GATEWAY_RESPONSES: dict[str, str] = {
    "502": "The gateway could not read the service's answer",
    "503": "The service is not reachable now (or is starting)",
    "504": "The service did not answer in time",
}


def combined_document(
    own: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    *,
    unavailable: Iterable[str] = (),
    error_schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One document for the gateway: its `own` operations and every service's under `/api/<service>`.

    A service's operationIds become `<service>_<id>` and its components `<service>.<name>` (two services
    may each have a `MemberOut`); each operation is tagged with its service and documents the gateway's
    own refusals (503, 504) besides the service's. `unavailable` services (down when asked) are named in
    the description. `error_schema` (the JSON Schema of the error body) backs the gateway's refusals."""
    doc = copy.deepcopy(dict(own))
    doc.pop("servers", None)  # the paths hold the prefixes: relative to the gateway's own origin
    paths: dict[str, Any] = doc.setdefault("paths", {})
    components: dict[str, Any] = doc.setdefault("components", {})
    schemes: dict[str, Any] = components.setdefault("securitySchemes", {})
    schemes.setdefault(BEARER_SCHEME_NAME, BEARER_SCHEME)
    if error_schema is not None:
        components.setdefault("schemas", {}).setdefault("GatewayError", dict(error_schema))
    gateway_error = {"$ref": "#/components/schemas/GatewayError"} if error_schema is not None else {"type": "object"}
    tags: list[dict[str, Any]] = list(doc.get("tags", []))
    seen_ids = {op.get("operationId") for _p, _m, op in _operations(doc)}
    for name, schema in services.items():

        def rename(section: str, key: str, service: str = name) -> str:
            return key if section == "securitySchemes" else f"{service}.{key}"

        prefix = f"/api/{name}"
        for path, item in schema.get("paths", {}).items():
            moved = _renamed(item, rename)
            for method in HTTP_METHODS:
                operation = moved.get(method)
                if not isinstance(operation, dict):
                    continue
                base = operation.get("operationId") or re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_")
                operation["operationId"] = unique = f"{name}_{base}"
                if unique in seen_ids:
                    raise ValueError(f"operationId {unique} twice in the combined document")
                seen_ids.add(unique)
                operation["tags"] = [name]
                responses = operation.setdefault("responses", {})
                for status, description in _GATEWAY_RESPONSES.items():
                    responses.setdefault(
                        status,
                        {"description": description, "content": {"application/json": {"schema": gateway_error}}},
                    )
            paths[prefix + path] = moved
        for section, values in schema.get("components", {}).items():
            target = components.setdefault(section, {})
            for key, value in values.items():
                renamed_key = rename(section, key)
                if section == "securitySchemes" and renamed_key in target and target[renamed_key] != value:
                    raise ValueError(f"service {name}: security scheme {key} differs from another service's")
                target[renamed_key] = _renamed(value, rename)
        summary = schema.get("info", {}).get("title", name)
        tags.append(
            {
                "name": name,
                "description": f"{summary}: the {name} service at {prefix}/ "
                f"(its own document: {prefix}/openapi.json, page: {prefix}/docs)",
            }
        )
    doc["tags"] = tags
    missing = sorted(unavailable)
    if missing:
        info = doc.setdefault("info", {})
        note = f"Not shown now (not reachable when this document was made): {', '.join(missing)}."
        info["description"] = (info.get("description", "") + "\n\n" + note).strip()
    return doc
