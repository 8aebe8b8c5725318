"""bench/conditions.py's verdict: a run is quiet by the machine's load before it starts and by what
other processes use around each side, never by the load the benchmark's own earlier sides left."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "conditions.py"


@pytest.fixture(scope="module")
def conditions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_conditions", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def side(first: bool, load: float, before: float = 0.0, during: float = 0.0) -> dict[str, Any]:
    return {
        "first_side": first,
        "load_average_before": [load, load, load],
        "others_cpu_cores_before": before,
        "others_cpu_cores": during,
    }


def test_a_busy_machine_before_the_first_side_is_not_quiet(conditions: ModuleType) -> None:
    c = conditions.Conditions()
    c.cores = 2
    quiet, reasons = c._verdict(side(True, load=1.2))
    assert not quiet and "before the first side" in reasons[0]
    assert c._verdict(side(True, load=0.3)) == (True, [])


def test_the_benchmarks_own_load_does_not_spoil_a_later_side(conditions: ModuleType) -> None:
    c = conditions.Conditions()
    c.cores = 2
    # the first side kept both cores busy: the load average is ~2 as the second starts, others idle
    assert c._verdict(side(False, load=1.9, before=0.02, during=0.05)) == (True, [])
    quiet, reasons = c._verdict(side(False, load=1.9, before=0.6, during=0.05))
    assert not quiet and "just before the side" in reasons[0]
    quiet, reasons = c._verdict(side(False, load=0.1, before=0.0, during=0.5))
    assert not quiet and "during the side" in reasons[0]


def test_a_real_side_records_both_samples(conditions: ModuleType) -> None:
    c = conditions.Conditions()
    with c.side("first"):
        sum(range(10_000))
    with c.side("second"):
        pass
    first, second = c.sides["first"], c.sides["second"]
    assert first["first_side"] and not second["first_side"]
    for record in (first, second):
        assert 0.0 <= record["others_cpu_cores_before"] <= c.cores
        assert isinstance(record["quiet"], bool)
    assert "before the first side" in c.report()["quiet_rule"]
