"""pytest plugin of the conformance gates: every `--deselect` must name collected tests, and only those.

pytest ignores a `--deselect` that matches nothing, so a renamed or removed moto test would leave a stale
line behind and the gate would look as strict as before while checking less; and it deselects by prefix,
so `test_x` would silently drop `test_x_something` too. Loaded with
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
    prefixes = config.getoption("deselect") or []
    stale = [prefix for prefix in prefixes if not any(_matches(n, prefix) for n in nodes)]
    if stale:
        raise pytest.UsageError(
            "deselections that match no collected test (remove or correct these lines): " + ", ".join(stale)
        )
    # pytest's prefix match would also drop tests whose names merely start with the line's name
    wider = sorted(
        {n for p in prefixes for n in nodes if n.startswith(p) and not any(_matches(n, q) for q in prefixes)}
    )
    if wider:
        raise pytest.UsageError("deselections that also drop tests they do not name: " + ", ".join(wider))
