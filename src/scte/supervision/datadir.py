"""The data directory at rest: only its owner can read it, and no secret from the environment is
written into it.

`secure_data_dir` runs before `scte up` starts anything: it sets the umask to 077 (inherited by every
child, so each database, log, mail store and upload they create is 0600 and each directory 0700),
creates the directory 0700, and takes group and other permissions off whatever an older install left
there. `public_environment` is the part of the children's environment that may be written to
`run/processes.json`: no credentials, whatever their origin.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "public_environment", "secret_name", "secure_data_dir"]

PRIVATE_UMASK = 0o077

_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEYS?($|_)|ACCESS_KEY", re.I)
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]*@", re.I)


def secure_data_dir(data_dir: Path) -> Path:
    """Create (or tighten) `data_dir` for this user only; set this process's umask to 077 for what
    it and its children create. Returns the resolved directory."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir = data_dir.resolve()
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            _private(Path(root) / name)
    _private(data_dir)
    return data_dir


def _private(path: Path) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)


def secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    return bool(_SECRET_NAME.search(name))


def public_environment(env: Mapping[str, str], names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`names` of `env` that hold no credential: neither named like one (…SECRET…, …TOKEN…, …_KEY…)
    nor a URL with a password in it (a database URL)."""
    return {
        name: env[name]
        for name in names
        if name in env and not secret_name(name) and not _URL_PASSWORD.match(env[name])
    }
