"""`scte deploy lambda`: the notifications function's deployment package, a zip Lambda runs as is.

Layout (Lambda puts the zip's root on `sys.path`; the handler is `scte.deploy.lambda_notifications.handler`):

    scte/...                      the platform's package (its sources, templates and migrations)
    <dependency>/...              each dependency's modules, as pip installs them into a --target directory
    <dependency>-<v>.dist-info/   (with --dependencies pip or local)

Next to the zip, `requirements.txt` lists the dependencies pinned as pyproject.toml pins them: with
`--dependencies none` they are left out of the zip, and a layer built from that file brings them
(`pip install --target python/ -r requirements.txt`, zipped: a layer's `python/` is on `sys.path`).

`--dependencies pip` (the default) installs them from PyPI as wheels for the Lambda runtime (manylinux,
x86_64, `--python-version`); `local` copies this environment's installed ones instead, which only runs
where this Python runs (same version and platform): what the tests invoke locally.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scte.deploy.cloudformation import LAMBDA_HANDLER

__all__ = ["LAMBDA_REQUIREMENTS", "Package", "PackageError", "build", "requirements"]

ZIP_NAME = "scte-notifications.zip"
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64")
"""Wheels the Lambda runtime's Amazon Linux 2023 (glibc 2.34, x86_64) loads; recent wheels (greenlet 3.5) are
built for manylinux_2_28 only, older ones for manylinux2014."""
LAMBDA_REQUIREMENTS = (
    "pydantic",
    "pydantic-settings",
    "email-validator",
    "sqlalchemy",
    "greenlet",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "aiobotocore",
    "aiohttp",
    "orjson",
    "opentelemetry-api",
    # the service package's modules import these (its HTTP API, mail, tokens) though the handlers do not
    "fastapi",
    "fastapi-offline",
    "python-multipart",
    "uvicorn",
    "httpx",
    "jinja2",
    "aiosmtplib",
    "PyJWT",
    "cryptography",
    "rich",
    "prometheus-client",
)
"""The distributions (of scte's own dependencies) the function imports; versions as scte pins them."""
SKIPPED = ("__pycache__",)


class PackageError(Exception):
    """The package cannot be built (said why)."""


@dataclass(frozen=True)
class Package:
    zip_path: Path
    requirements_path: Path
    handler: str
    size_bytes: int
    dependencies: list[str] = field(default_factory=list)


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requirement_class() -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:
        raise PackageError("building the package needs `packaging`: pip install -e '.[deploy]'") from None
    return Requirement


def requirements() -> list[str]:
    """`LAMBDA_REQUIREMENTS` pinned as scte's metadata pins them (`sqlalchemy[asyncio]==2.1.9`...)."""
    Requirement = _requirement_class()

    declared: dict[str, str] = {}
    for text in metadata.requires("scte") or []:
        requirement = Requirement(text)
        if requirement.marker is None:
            declared[_canonical(requirement.name)] = text
    missing = [n for n in LAMBDA_REQUIREMENTS if _canonical(n) not in declared]
    if missing:
        raise PackageError(f"not dependencies of scte (pyproject.toml): {', '.join(missing)}")
    out = []
    for name in LAMBDA_REQUIREMENTS:
        requirement = Requirement(declared[_canonical(name)])
        if _canonical(name) == "uvicorn":
            requirement.extras = set()  # its [standard] extras serve HTTP; the function serves none
        out.append(str(requirement))
    return out


def _installed_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions of `roots` and everything they require (extras and markers honoured)."""
    Requirement = _requirement_class()

    found: dict[str, metadata.Distribution] = {}
    visited: set[tuple[str, str]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        requirement = todo.pop()
        name = _canonical(requirement.name)
        extras = sorted(requirement.extras) or [""]
        if all((name, e) in visited for e in extras):
            continue
        visited.update((name, e) for e in extras)
        try:
            dist = found.get(name) or metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise PackageError(f"{requirement.name} is not installed here (--dependencies local)") from None
        found[name] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return sorted(found.values(), key=lambda d: _canonical(d.metadata["Name"]))


def _installed_files(dist: metadata.Distribution) -> Iterator[tuple[Path, str]]:
    """(file on disk, path in the zip) of an installed distribution's files inside its site-packages."""
    for relative in dist.files or []:
        parts = Path(str(relative)).parts
        if not parts or parts[0] == ".." or any(p in SKIPPED for p in parts) or parts[0].endswith(".pth"):
            continue
        path = Path(str(dist.locate_file(relative)))
        if path.is_file():
            yield path, "/".join(parts)


def _tree(root: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED)
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(directory) / name
            yield path, f"{prefix}/{path.relative_to(root).as_posix()}"


def _scte_files() -> Iterator[tuple[Path, str]]:
    """The scte package as it is here (an editable install's sources, or the installed package)."""
    import scte

    yield from _tree(Path(scte.__file__).parent, "scte")


def _pip_install(target: Path, pinned: list[str], python_version: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
        *[f"--platform={platform}" for platform in PLATFORMS],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *pinned,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackageError(f"pip could not install the dependencies for Python {python_version}:\n{done.stderr}")


def build(output: Path, *, dependencies: str = "pip", python_version: str = "3.13") -> Package:
    """Write `output/scte-notifications.zip` and `output/requirements.txt`."""
    if dependencies not in ("pip", "local", "none"):
        raise PackageError(f"--dependencies must be pip, local or none, not {dependencies!r}")
    pinned = requirements()
    output.mkdir(parents=True, exist_ok=True)
    requirements_path = output / "requirements.txt"
    requirements_path.write_text(
        "# the notifications Lambda function's dependencies (scte deploy lambda); a layer: "
        "pip install --target python/ -r requirements.txt\n" + "\n".join(pinned) + "\n",
        encoding="utf-8",
    )
    zip_path = output / ZIP_NAME
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scte-lambda-") as staging_dir:
        staging = Path(staging_dir)
        entries: list[tuple[Path, str]] = []
        if dependencies == "pip":
            _pip_install(staging, pinned, python_version)
            entries += [e for e in _tree(staging, "") if not e[1].startswith("/bin/")]
            entries = [(path, arcname.lstrip("/")) for path, arcname in entries]
            names = sorted(p.name for p in staging.glob("*.dist-info"))
        elif dependencies == "local":
            for dist in _installed_closure(pinned):
                if _canonical(dist.metadata["Name"]) == "scte":
                    continue
                names.append(f"{dist.metadata['Name']}=={dist.version}")
                entries += list(_installed_files(dist))
        entries = [e for e in entries if not e[1].startswith("scte/")] + list(_scte_files())
        tmp = zip_path.with_suffix(".zip.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            seen: set[str] = set()
            for path, arcname in sorted(entries, key=lambda e: e[1]):
                if arcname in seen:
                    continue
                seen.add(arcname)
                archive.write(path, arcname)
        shutil.move(tmp, zip_path)
    return Package(zip_path, requirements_path, LAMBDA_HANDLER, zip_path.stat().st_size, names)
