"""pytest plugin of the conformance gates: every `--deselect` must match a collected test.

pytest ignores a `--deselect` that matches nothing, so a renamed or removed moto test would leave a stale
line behind and the gate would look as strict as before while checking less. Loaded with
`-p deselection_guard` by moto_sqs.py when it runs the whole suite; a stale line stops the run (exit 4).
"""

from __future__ import annotations

import pytest


def _matches(node: str, prefix: str) -> bool:
    # pytest deselects by plain prefix; a line must name a test (or its parametrized cases), not a longer name
    return node == prefix or node.startswith((prefix + "[", prefix + "::"))


@pytest.hookimpl(tryfirst=True)  # before pytest's own deselection, on every collected test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    nodes = [item.nodeid for item in items]
    stale = [prefix for prefix in config.getoption("deselect") or [] if not any(_matches(n, prefix) for n in nodes)]
    if stale:
        raise pytest.UsageError(
            "deselections that match no collected test (remove or correct these lines): " + ", ".join(stale)
        )
