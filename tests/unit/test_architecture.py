"""The layering of ARCHITECTURE.md, checked on the source: `scte.queue` knows nothing of `scte.bus`;
`scte.bus` knows nothing of any service; a service never imports another service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "scte"
SERVICES = sorted(p.name for p in (SRC / "services").iterdir() if p.is_dir() and not p.name.startswith("_"))


def imported_modules(package: Path) -> dict[str, set[str]]:
    """For each .py file under `package`: the absolute module names it imports."""
    out: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(SRC))] = names
    return out


def offenders(package: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file}: {name}"
        for file, names in imported_modules(package).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_there_are_ten_services() -> None:
    assert len(SERVICES) == 10, SERVICES


def test_the_broker_knows_nothing_of_the_bus_or_the_services() -> None:
    assert offenders(SRC / "queue", ("scte.bus", "scte.kit", "scte.services", "scte.contracts")) == []


def test_the_bus_knows_nothing_of_the_services() -> None:
    assert offenders(SRC / "bus", ("scte.services", "scte.kit", "scte.contracts", "scte.platform")) == []


def test_contracts_are_shared_code_only() -> None:
    assert offenders(SRC / "contracts", ("scte.services", "scte.kit", "scte.queue")) == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_another(service: str) -> None:
    others = tuple(f"scte.services.{other}" for other in SERVICES if other != service)
    assert offenders(SRC / "services" / service, (*others, "scte.queue", "scte.platform")) == []
