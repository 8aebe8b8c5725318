"""The clock's offsets and the settings' per-service lookups."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scte.kit.clock import Clock, FixedClock
from scte.kit.settings import Settings


def test_clock_offsets(tmp_path: Path) -> None:
    offset_file = tmp_path / "clock-offset"
    clock = Clock(offset_seconds=3600, offset_file=offset_file)
    assert abs(clock.timestamp() - (time.time() + 3600)) < 5
    offset_file.write_text("86400")
    assert abs(clock.timestamp() - (time.time() + 3600 + 86400)) < 5
    offset_file.write_text("not a number")
    os.utime(offset_file, (time.time() + 10, time.time() + 10))
    assert abs(clock.timestamp() - (time.time() + 3600)) < 5
    fixed = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    fixed.advance(86400)
    assert fixed.today().isoformat() == "2026-01-02"


def test_settings_per_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCTE_LEARNING_DATABASE_URL", "postgresql+asyncpg://db/learning")
    monkeypatch.setenv("SCTE_LEARNING_PORT", "9999")
    monkeypatch.setenv("SCTE_BROKER", "http://broker:1/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere:2")  # the switch, not this, names the broker
    settings = Settings(data_dir=tmp_path, database_urls={"members": "sqlite+aiosqlite:///x.db"})
    assert settings.database_url("members") == "sqlite+aiosqlite:///x.db"
    assert settings.database_url("learning") == "postgresql+asyncpg://db/learning"
    assert settings.database_url("search") == f"sqlite+scte:///{tmp_path.resolve()}/search.db"
    assert settings.port("learning", 8102) == 9999
    assert settings.port("search", 8110) == 8110
    assert settings.aws_endpoint_url == "http://broker:1"
    assert settings.public_key_path == tmp_path / "keys" / "jwt-ed25519.pub.pem"
