"""Suite-wide hooks: the summary says how many PostgreSQL tests were skipped on purpose.

PostgreSQL tests fail when the server does not answer; `SCTE_TEST_SKIP_POSTGRES=1` skips them instead, and a run
that did so must not look like a full run, hence the line at the end of the summary.
"""

from __future__ import annotations

import pytest

from scte.kit.testing import SKIP_POSTGRES, SKIP_REASON_PREFIX


def _skipped_postgres(terminalreporter: pytest.TerminalReporter) -> int:
    count = 0
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        # a skip's longrepr is (path, line, "Skipped: reason")
        if isinstance(longrepr, tuple) and len(longrepr) == 3 and SKIP_REASON_PREFIX in str(longrepr[2]):
            count += 1
    return count


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SKIP_POSTGRES:
        return
    terminalreporter.write_sep(
        "=",
        f"SCTE_TEST_SKIP_POSTGRES=1: {_skipped_postgres(terminalreporter)} PostgreSQL tests SKIPPED on purpose "
        "(this run did not test PostgreSQL)",
        yellow=True,
        bold=True,
    )
