"""The conformance gates' pytest plugin: a `--deselect` that matches no collected test stops the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GUARD = Path(__file__).parents[1] / "conformance"

SUITE = """
import pytest

def test_kept():
    pass

def test_dropped():
    pass

def test_dropped_too_long_a_name():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_cases(n):
    pass
"""


def run(tmp_path: Path, *deselect: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(SUITE)
    args = [sys.executable, "-m", "pytest", "-p", "deselection_guard", "-p", "no:cacheprovider", "-q", "-o", "addopts="]
    for node in deselect:
        args += ["--deselect", node]
    env = {**os.environ, "PYTHONPATH": str(GUARD)}
    return subprocess.run([*args, "test_suite.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_deselections_that_match_tests_run_as_before(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "test_suite.py::test_dropped",
        "test_suite.py::test_dropped_too_long_a_name",
        "test_suite.py::test_cases",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 4 deselected" in result.stdout


def test_a_stale_deselection_fails_the_run(tmp_path: Path) -> None:
    result = run(tmp_path, "test_suite.py::test_cases", "test_suite.py::test_renamed_long_ago")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "test_suite.py::test_renamed_long_ago" in result.stderr
    assert "passed" not in result.stdout


def test_a_prefix_of_a_longer_name_is_not_a_match(tmp_path: Path) -> None:
    # pytest would deselect test_dropped_too_long_a_name by prefix; the guard wants a whole name
    result = run(tmp_path, "test_suite.py::test_dropped_too")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "match no collected test" in result.stderr


def test_a_line_that_would_drop_another_test_by_prefix_fails_the_run(tmp_path: Path) -> None:
    # pytest alone deselects test_dropped_too_long_a_name with the line test_dropped, silently
    result = run(tmp_path, "test_suite.py::test_dropped")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "also drop tests they do not name: test_suite.py::test_dropped_too_long_a_name" in result.stderr
