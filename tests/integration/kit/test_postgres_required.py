"""An unreachable PostgreSQL fails the PostgreSQL tests; only SCTE_TEST_SKIP_POSTGRES=1 skips them, and says so.

Runs one PostgreSQL test of the suite in a child pytest pointed at a port where nothing listens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
TARGET = "tests/integration/kit/test_app_gateway_db.py::test_migrations_run_and_are_idempotent[postgresql]"


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k not in {"SCTE_TEST_SKIP_POSTGRES", "PYTEST_XDIST_WORKER"}}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", TARGET],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(300)
def test_a_dead_postgres_fails_and_the_skip_is_only_on_purpose() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{held.getsockname()[1]}/test"
        failed = _run(SCTE_TEST_POSTGRES_URL=url)
        skipped = _run(SCTE_TEST_POSTGRES_URL=url, SCTE_TEST_SKIP_POSTGRES="1")

    assert failed.returncode != 0, failed.stdout
    assert "PostgreSQL not reachable" in failed.stdout
    assert "SCTE_TEST_SKIP_POSTGRES=1 to skip" in failed.stdout
    assert "skipped" not in failed.stdout.splitlines()[-1]

    assert skipped.returncode == 0, skipped.stdout
    assert "1 skipped" in skipped.stdout.splitlines()[-1]
    assert "SCTE_TEST_SKIP_POSTGRES=1: 1 PostgreSQL tests SKIPPED on purpose" in skipped.stdout
