"""The gateway's API documents over real HTTP on loopback: every service's app served by uvicorn, the
gateway in front of them; one combined document at /openapi.json, each service's own at
/api/<service>/openapi.json with the gateway's prefix as its server, and the Swagger page with its
assets served by the gateway itself. Anyone may read them (no token)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from openapi_spec_validator import validate

from scte.kit import testing
from scte.kit.docs import HTTP_METHODS
from scte.platform import SERVICES, service_module
from scte.web.gateway import create_gateway


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: FastAPI, *, lifespan: str = "on") -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # polls: no fixed wait on a busy machine
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def platform(tmp_path: Path, down: str | None = None) -> AsyncIterator[str]:
    """Every service's FastAPI app (its routes and document; no database work is asked of it here) on
    its own port, and the gateway routing to them; `down` routes to a port nobody listens on."""
    urls: dict[str, str] = {}
    async with asyncio.timeout(300):
        servers = []
        for name in SERVICES:
            if name == down:
                urls[name] = f"http://127.0.0.1:{_free_port()}"
                continue
            module = service_module(name)
            assert module is not None
            app = module.build_runtime(testing.test_settings(tmp_path / name)).app
            servers.append(serving(app, lifespan="off"))
        entered = [await s.__aenter__() for s in servers]
        urls.update(dict(zip([n for n in SERVICES if n != down], entered, strict=True)))
    try:
        async with serving(create_gateway(urls)) as gateway:
            yield gateway
    finally:
        for s in reversed(servers):
            await s.__aexit__(None, None, None)


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


async def test_the_gateway_serves_one_valid_document_of_every_service(tmp_path: Path) -> None:
    async with platform(tmp_path) as gateway, httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        answer = await client.get("/openapi.json")  # no token: the documents are public
        assert answer.status_code == 200, answer.text
        combined = answer.json()
        validate(combined)
        operations = _operations(combined)
        assert {"GET /health", "GET /api"} <= set(operations)
        for name in SERVICES:
            own = (await client.get(f"/api/{name}/openapi.json")).json()
            validate(own)
            assert own["servers"] == [{"url": f"/api/{name}", "description": "Through the gateway"}]
            for label in _operations(own):
                method, path = label.split(" ", 1)
                assert f"{method} /api/{name}{path}" in operations, label
        ids = Counter(op["operationId"] for op in operations.values())
        assert [i for i, n in ids.items() if n > 1] == []
        assert not any("proxy" in i for i in ids), "the catch-all route is not an operation"
        assert "Not shown now" not in combined["info"].get("description", "")

        # "Try it out" sends server + path: through the gateway, to the service
        members = (await client.get("/api/members/openapi.json")).json()
        reached = await client.get(members["servers"][0]["url"] + "/health")
        assert reached.json()["service"] == "members"
        refused = await client.get(members["servers"][0]["url"] + "/me")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"

        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert "<script>" not in page.text  # no inline script: the policy allows none
        assert '<html lang="en">' in page.text and "<title>SCTE Platform API</title>" in page.text
        for asset in ("docs/static/swagger-ui-bundle.js", "docs/static/swagger-ui.css", "docs/swagger-init.js"):
            assert f'"{asset}' in page.text
            served = await client.get("/" + asset)
            assert served.status_code == 200 and len(served.content) > 200, asset
        assert "validatorUrl: null" in (await client.get("/docs/swagger-init.js")).text  # no call to swagger.io

        assert (await client.get("/api/nothing/openapi.json")).status_code == 404
        for path in ("/openapi.json", "/docs", "/api/members/openapi.json", "/docs/swagger-init.js"):
            answer = await client.post(path, json={})
            assert answer.status_code in (404, 405), (path, answer.status_code)  # read only


async def test_a_service_down_is_left_out_and_named(tmp_path: Path) -> None:
    async with platform(tmp_path, down="search") as gateway, httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        combined = (await client.get("/openapi.json")).json()
        validate(combined)
        assert not any(path.startswith("/api/search/") for path in combined["paths"])
        assert "/api/members/health" in combined["paths"]
        assert combined["info"]["description"].endswith("(not reachable when this document was made): search.")
        own = await client.get("/api/search/openapi.json")
        assert own.status_code == 503 and own.json()["error"] == "unavailable"
