"""`scte up --replicas`: what it accepts, and the clear error and non-zero exit of what it does not
(the parser alone, then the real `scte up` command in a process of its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scte.platform import SERVICES
from scte.supervision.replicas import (
    MAX_REPLICAS,
    ReplicasError,
    check_database,
    format_replicas,
    parse_replicas,
    replica_environment,
    replica_name,
)

SRC = Path(__file__).resolve().parents[3] / "src"


def test_counts_per_service_and_spaces_tolerated() -> None:
    assert parse_replicas("notifications=3,search=2", SERVICES) == {"notifications": 3, "search": 2}
    assert parse_replicas(" notifications = 3 , search=1 ", SERVICES) == {"notifications": 3, "search": 1}
    assert parse_replicas(None, SERVICES) == {} == parse_replicas("  ", SERVICES)
    assert parse_replicas(f"reports={MAX_REPLICAS}", SERVICES) == {"reports": MAX_REPLICAS}
    assert format_replicas({"notifications": 3, "search": 2}) == "notifications=3,search=2"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("foo", "'foo' is not SERVICE=COUNT"),
        ("notifications", "is not SERVICE=COUNT"),
        ("=3", "is not SERVICE=COUNT"),
        ("search=", "is not SERVICE=COUNT"),
        ("nosuch=2", "unknown service 'nosuch'"),
        ("search=0", "from 1 to"),
        ("search=-1", "from 1 to"),
        (f"search={MAX_REPLICAS + 1}", "from 1 to"),
        ("search=two", "whole number"),
        ("search=2.5", "whole number"),
        ("search=2,,reports=2", "empty item"),
        ("search=2,search=3", "named twice"),
    ],
)
def test_bad_values_are_refused_with_the_reason(value: str, says: str) -> None:
    with pytest.raises(ReplicasError, match=says):
        parse_replicas(value, SERVICES)


def test_replica_names_and_environment() -> None:
    assert replica_name("search", 0) == "search"
    assert replica_name("search", 2) == "search-2"
    assert replica_environment(1, 40001) == {"SCTE_REPLICA": "1", "SCTE_REPLICA_PORT": "40001"}
    with pytest.raises(ValueError):
        replica_environment(0, 40001)


def test_a_database_each_process_would_have_its_own_of_is_refused(tmp_path: Path) -> None:
    check_database("search", f"sqlite+scte:///{tmp_path / 'search.db'}")
    check_database("search", "postgresql+asyncpg://postgres@127.0.0.1:5432/search")
    for memory in ("sqlite+aiosqlite:///:memory:", "sqlite://"):
        with pytest.raises(ReplicasError, match="in-memory"):
            check_database("search", memory)
    with pytest.raises(ReplicasError, match="cannot be read") as refused:
        check_database("search", "not a url with password hunter2")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("value", ["foo", "nosuch=2", "search=0", "search=-1", "search=x"])
def test_scte_up_exits_non_zero_with_the_reason_and_starts_nothing(value: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scte.cli import app

    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["up", "--data", str(data), "--no-seed", "--replicas", value])
    assert result.exit_code == 2, result.output
    assert "--replicas" in result.output and value.split("=")[0] in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not data.exists()  # refused before anything was created or started


def test_the_scte_command_itself_exits_2_on_a_bad_value(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scte.cli", "up", "--data", str(tmp_path / "data"), "--replicas", "search=0"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "search=0: the count must be from 1 to" in done.stderr
    assert "Traceback" not in done.stderr
