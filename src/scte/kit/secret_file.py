"""An install's secret in a file of its own: made once, mode 0600 from the first byte (created with
O_EXCL, so two starts racing keep the first). Standard library only: the supervisor's preparation step
writes the secrets without importing the services' web stack."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_new_secret"]


def write_new_secret(path: Path) -> bool:
    """Write a new random secret to `path` (mode 0600) unless the file exists; True if written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(32))
    return True
