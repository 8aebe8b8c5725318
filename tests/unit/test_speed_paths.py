"""The speed paths switch themselves off (scte.speed_paths): with `SCTE_SPEED_PATHS=off`, or when a library they
reach into is at a release they were not tested with (faked here: a unit test), each selects its plain path.
The plain paths themselves run for real in tests/integration/bus/test_plain_paths.py and
tests/integration/server/test_server_plain_http.py (and `make test-slow-path` runs the suites on them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from scte import speed_paths
from scte.bus import greenlets
from scte.bus.database import sqlite_engine
from scte.queue.server.http import SqsHttpProtocol
from scte.queue.server.serve import http_protocol


@pytest.fixture(autouse=True)
def fresh_decisions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test decides afresh, and leaves the process as it found it (greenlets installed or not)."""
    was_installed = greenlets.installed()
    monkeypatch.delenv(speed_paths.ENV, raising=False)
    speed_paths.reset()
    yield
    monkeypatch.undo()
    speed_paths.reset()
    if was_installed:
        greenlets.install()
    else:
        greenlets.uninstall()


def untested(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every library looks like a release no path was tested with."""
    monkeypatch.setattr(speed_paths, "installed_version", lambda distribution: "0.0.1")


def switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(speed_paths.ENV, "off")


OFF = [pytest.param(untested, id="untested-release"), pytest.param(switched_off, id="SCTE_SPEED_PATHS=off")]


def test_the_pinned_releases_are_the_tested_ones() -> None:
    # constraints.txt and the tables move together: with the pins installed, every path is on.
    for path in speed_paths.PATHS:
        assert speed_paths.decide(path, None, {d: speed_paths.installed_version(d) for d in path.tested}) is None
        assert speed_paths.enabled(path)


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "no"])
def test_the_switch_turns_every_path_off(value: str) -> None:
    for path in speed_paths.PATHS:
        versions = {d: next(iter(v)) for d, v in path.tested.items()}
        assert speed_paths.decide(path, value, versions) == f"SCTE_SPEED_PATHS={value}"
        assert speed_paths.decide(path, "on", versions) is None


def test_a_missing_or_other_release_is_named() -> None:
    reason = speed_paths.decide(speed_paths.QUEUE_HTTP, None, {"uvicorn": "0.54.0", "httptools": None})
    assert reason is not None and "httptools (not installed)" in reason
    reason = speed_paths.decide(speed_paths.GREENLETS, None, {"sqlalchemy": "2.2.0"})
    assert reason is not None and "sqlalchemy 2.2.0" in reason and "2.1.9" in reason


def test_an_untested_release_logs_one_warning_per_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    untested(monkeypatch)
    with caplog.at_level(logging.INFO, logger="scte.speed_paths"):
        for _ in range(3):
            assert not any(speed_paths.enabled(path) for path in speed_paths.PATHS)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(r.getMessage().split()[2] for r in warnings) == ["greenlets", "queue_http", "sqlite_inline"]
    assert all("0.0.1" in r.getMessage() for r in warnings)


def test_the_switch_is_logged_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    switched_off(monkeypatch)
    with caplog.at_level(logging.INFO, logger="scte.speed_paths"):
        assert not speed_paths.enabled(speed_paths.GREENLETS)
    assert [r.levelno for r in caplog.records] == [logging.INFO]


@pytest.mark.parametrize("turn_off", OFF)
def test_greenlets_plain_path(monkeypatch: pytest.MonkeyPatch, turn_off: object) -> None:
    greenlets.uninstall()
    turn_off(monkeypatch)  # type: ignore[operator]
    greenlets.install()
    assert not greenlets.installed()  # SQLAlchemy's own greenlet_spawn


def test_greenlets_on_with_the_tested_release() -> None:
    greenlets.uninstall()
    greenlets.install()
    assert greenlets.installed()


@pytest.mark.parametrize("turn_off", OFF)
async def test_sqlite_inline_plain_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, turn_off: object) -> None:
    turn_off(monkeypatch)  # type: ignore[operator]
    engine = sqlite_engine(tmp_path / "a.db")
    try:
        assert engine.dialect.driver == "aiosqlite"
    finally:
        await engine.dispose()


async def test_sqlite_inline_on_with_the_tested_release(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "a.db")
    try:
        assert engine.dialect.driver == "scte"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("turn_off", OFF)
def test_queue_http_plain_path(monkeypatch: pytest.MonkeyPatch, turn_off: object) -> None:
    turn_off(monkeypatch)  # type: ignore[operator]
    assert http_protocol() == "auto"  # uvicorn's own protocol and ASGI cycle


def test_queue_http_on_with_the_tested_release() -> None:
    assert http_protocol() is SqsHttpProtocol
