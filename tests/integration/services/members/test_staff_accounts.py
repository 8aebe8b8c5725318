"""No shared, known credentials: staff accounts from `scte admin` with random passwords shown once,
demo members with CSPRNG ids and no sign-in, on a real SQLite members database and the real service."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from scte.admin import AdminError, create_staff, reset_password
from scte.cli import app
from scte.kit.db import create_engine
from scte.kit.settings import Settings
from scte.kit.testing import api_client
from scte.kit.testing import test_settings as settings_in
from scte.seed import _seed_members
from scte.services.members.db import members
from scte.services.members.hashing import UNUSABLE_HASH
from scte.services.members.service import build_runtime


@asynccontextmanager
async def members_service(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    runtime = build_runtime(settings_in(data_dir))
    await runtime.start(consume=False)
    try:
        async with api_client(runtime) as client:
            yield client
    finally:
        await runtime.stop()


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/sessions", json={"email": email, "password": password})


async def test_create_staff_and_reset_password(tmp_path: Path) -> None:
    staff = await create_staff(tmp_path, "Boss@Example.com", "Big Boss")
    assert staff.email == "boss@example.com"
    assert len(staff.password) >= 24
    with pytest.raises(AdminError, match="has an account already"):
        await create_staff(tmp_path, "boss@example.com")
    with pytest.raises(AdminError, match="not a usable e-mail"):
        await create_staff(tmp_path, "boss@example.com.")
    with pytest.raises(AdminError, match="no account"):
        await reset_password(tmp_path, "nobody@example.com")
    async with members_service(tmp_path) as client:
        signed = await sign_in(client, "boss@example.com", staff.password)
        assert signed.status_code == 200, signed.text
        assert signed.json()["roles"] == ["member", "staff"]
        renewed = await reset_password(tmp_path, "boss@example.com")
        assert renewed.password != staff.password
        assert (await sign_in(client, "boss@example.com", staff.password)).status_code == 401
        assert (await sign_in(client, "boss@example.com", renewed.password)).status_code == 200
    assert not files_holding(tmp_path, staff.password, renewed.password)


def files_holding(directory: Path, *secrets: str) -> list[Path]:
    """The files under `directory` that contain any of `secrets` (in any file, databases included)."""
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and any(secret.encode() in path.read_bytes() for secret in secrets)
    ]


def test_the_cli_shows_the_password_once_and_refuses_clearly(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["admin", "create-staff", "ops@example.com", "--data", str(tmp_path)])
    assert created.exit_code == 0, created.output
    password = created.output.rsplit(": ", 1)[1].strip()
    assert len(password) >= 24 and created.output.count(password) == 1
    again = runner.invoke(app, ["admin", "create-staff", "ops@example.com", "--data", str(tmp_path)])
    assert again.exit_code == 1 and "reset-password" in again.output
    reset = runner.invoke(app, ["admin", "reset-password", "ops@example.com", "--data", str(tmp_path)])
    assert reset.exit_code == 0 and password not in reset.output
    missing = runner.invoke(app, ["admin", "reset-password", "nobody@example.com", "--data", str(tmp_path)])
    assert missing.exit_code == 1 and "no account" in missing.output


async def test_demo_members_have_random_ids_and_cannot_sign_in(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    ids_one, _ = await _seed_members(Settings(data_dir=first), 20, random.Random(6))
    ids_two, _ = await _seed_members(Settings(data_dir=second), 20, random.Random(6))
    assert len(set(ids_one)) == 20 and not set(ids_one) & set(ids_two)  # same rng seed, different ids
    engine = create_engine(Settings(data_dir=first).database_url("members"))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(members.c.email, members.c.password_hash))).all()
    finally:
        await engine.dispose()
    assert {h for _, h in rows} == {UNUSABLE_HASH}
    async with members_service(first) as client:
        for email, _ in rows[:3]:
            for password in ("", "scte-demo-password-2026", UNUSABLE_HASH):
                refused = await sign_in(client, email, password or " ")
                assert refused.status_code == 401, refused.text
