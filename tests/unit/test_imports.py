"""What each process of `scte up` imports, checked in a fresh interpreter (the footprint of issue 16).

A service's process imports its own package and the shared code, never another service's modules, nor
Pillow outside media, nor the AWS SDK before it connects to a broker; the supervisor imports no service
and none of the services' libraries; the fork server preloads only what every service imports. Memory
itself is measured by `bench/footprint.py`, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
SERVICES = sorted(p.name for p in (SRC / "scte" / "services").iterdir() if (p / "service.py").exists())
AWS_SDK = ("botocore", "aiobotocore", "boto3")
SERVICE_LIBRARIES = ("fastapi", "sqlalchemy", "alembic", "uvicorn", "pydantic", "jwt", "httpx", *AWS_SDK)


def modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The names in `sys.modules` after running `code` in a new interpreter on this checkout."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    environment = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_the_probe_sees_what_is_imported() -> None:
    """The check below could fail: importing media's service does bring Pillow in."""
    assert under(modules_after("import scte.services.media.service"), "PIL")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_process_imports_its_own_package_only(service: str) -> None:
    modules = modules_after(f"import scte.services.{service}.service")
    others = [f"scte.services.{other}" for other in SERVICES if other != service]
    assert under(modules, *others) == []
    assert f"scte.services.{service}.service" in modules
    if service != "media":
        assert under(modules, "PIL") == []
    assert under(modules, *AWS_SDK) == []  # the transport imports it when it connects, if it is the AWS one
    assert under(modules, "zxcvbn") == []  # members' password estimator: on the first new password


def test_the_supervisor_imports_no_service_and_none_of_their_libraries() -> None:
    modules = modules_after("import scte.cli, scte.up, scte.kit.switches, scte.supervision.replicas")
    assert under(modules, "scte.services") == []
    assert under(modules, *SERVICE_LIBRARIES, "PIL", "scte.contracts", "scte.queue") == []
    assert under(modules, "scte.kit") == ["scte.kit", "scte.kit.switches"]  # `--broker`, `--database` only


def test_the_fork_server_preloads_what_services_share_only() -> None:
    from scte.supervision.forkserver import PRELOAD, PRELOAD_AWS

    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in PRELOAD)
    modules = modules_after(code)
    assert under(modules, "scte.services", "PIL", *AWS_SDK) == []
    assert under(modules, "fastapi", "sqlalchemy")  # it does preload the shared libraries
    with_aws = modules_after(code + "".join(f"importlib.import_module({m!r})\n" for m in PRELOAD_AWS))
    assert under(with_aws, "scte.services", "PIL") == []
