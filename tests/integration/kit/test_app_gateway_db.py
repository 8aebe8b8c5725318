"""The kit against real HTTP and real databases: uniform errors, token checks, migrations on SQLite and
PostgreSQL, and the gateway routing to a service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import inspect

from scte.kit.app import Conflict, NotFound, create_app
from scte.kit.auth import CurrentPrincipal, TokenIssuer, ensure_self_or_staff
from scte.kit.db import create_engine, run_migrations
from scte.kit.testing import api_client, bearer, database_url
from scte.web.gateway import create_gateway


class RuleBroken(ValueError):
    pass


router = APIRouter()


class Body(BaseModel):
    n: int


@router.post("/things")
async def make(body: Body) -> dict[str, int]:
    if body.n == 1:
        raise RuleBroken("one is not allowed")
    if body.n == 2:
        raise Conflict("two exists")
    if body.n == 3:
        raise NotFound("no three")
    if body.n == 4:
        raise RuntimeError("bug")
    return {"n": body.n}


@router.get("/members/{member_id}")
async def read(member_id: str, principal: CurrentPrincipal) -> dict[str, str]:
    ensure_self_or_staff(principal, member_id)
    return {"id": member_id}


@pytest.fixture
def issuer() -> TokenIssuer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return TokenIssuer(Ed25519PrivateKey.generate())


async def test_uniform_errors(issuer: TokenIssuer) -> None:
    app = create_app("demo", [router], domain_errors={RuleBroken: 400}, verifier=issuer.verifier())
    async with api_client(app, raise_app_exceptions=False) as client:
        expected = {1: (400, "bad_request"), 2: (409, "conflict"), 3: (404, "not_found"), 4: (500, "internal_error")}
        for n, (status, code) in expected.items():
            response = await client.post("/things", json={"n": n})
            assert (response.status_code, response.json()["error"]) == (status, code)
        invalid = await client.post("/things", json={"n": "x"})
        assert invalid.status_code == 422 and invalid.json()["message"].startswith("n:")
        assert (await client.get("/nowhere")).json() == {"error": "not_found", "message": "Not Found"}
        assert (await client.get("/members/m1")).status_code == 401
        assert (await client.get("/members/m1", headers=bearer(issuer.issue("m1")))).status_code == 200
        assert (await client.get("/members/m2", headers=bearer(issuer.issue("m1")))).status_code == 403
        assert (await client.get("/health")).json() == {"service": "demo", "status": "ok"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_migrations_run_and_are_idempotent(kind: str, tmp_path: Path) -> None:
    async with database_url(kind, tmp_path, "members") as url:
        run_migrations("scte.services.members", url)
        run_migrations("scte.services.members", url)  # a restart: nothing to do
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        finally:
            await engine.dispose()
        assert {"members", "memberships", "member_certifications", "bus_outbox", "bus_inbox"} <= tables


async def test_gateway_routes_and_sums_up_health(issuer: TokenIssuer) -> None:
    service = create_app("demo", [router], verifier=issuer.verifier())
    gateway = create_gateway(
        {"demo": "http://demo", "down": "http://127.0.0.1:9"}, transport=httpx.ASGITransport(app=service)
    )
    async with gateway.router.lifespan_context(gateway), api_client(gateway) as client:
        ok = await client.get("/api/demo/members/m1", headers=bearer(issuer.issue("m1")))
        assert ok.status_code == 200 and ok.json() == {"id": "m1"}
        assert (await client.get("/api/demo/members/m1")).status_code == 401
        assert (await client.post("/api/demo/things", json={"n": 2})).status_code == 409
        assert (await client.get("/api/nothing/x")).status_code == 404
        health = await client.get("/health")
        assert health.json()["services"]["demo"] == {"status": "ok"}


@pytest.mark.parametrize("driver", ["scte", "aiosqlite"])
async def test_sqlite_engines_enforce_foreign_keys_and_the_default_runs_on_the_loop(
    driver: str, tmp_path: Path
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from scte.bus.database import closes_inline

    engine = create_engine(f"sqlite+{driver}:///{tmp_path / 'sub' / 'service.db'}")
    try:
        assert closes_inline(engine) is (driver == "scte")  # the default URL's driver: SQLite on the loop
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            await conn.execute(
                text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id))")
            )
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO child (parent) VALUES (1)"))
    finally:
        await engine.dispose()
