"""pyproject.toml takes compatible ranges (scte installs beside another application's pins); constraints.txt pins
the exact release of every requirement, and `make` installs with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: not an exact pin: {line!r}"
            pins[_name(name)] = version
    return pins


def test_library_dependencies_are_ranges_not_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = [r for r in project["dependencies"] if "==" in r]
    assert pinned == [], "exact pins belong in constraints.txt"
    assert all(re.search(r"[<>]=?", r) for r in project["dependencies"]), "each library dependency has a range"


def test_every_requirement_has_an_exact_pin_in_the_constraints() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _pins()
    assert [r for r in requirements if _name(r) not in pins] == []


def test_make_installs_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if re.search(r"pip install .*-e ", line)]
    installs += [line for line in makefile.splitlines() if "$(PIP_INSTALL)" in line]
    assert installs and "PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt" in makefile
    assert all("$(PIP_INSTALL)" in line for line in installs), installs
