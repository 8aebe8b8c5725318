"""The install's token for `GET /metrics` (`<data>/keys/metrics-token`, mode 0600): written once by
`scte up`, read by each service and the gateway (`scte.kit.metrics`), never printed. Standard library
only: the supervisor writes it without importing the services' web stack."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["ensure_metrics_token", "read_metrics_token"]


def ensure_metrics_token(path: Path) -> bool:
    """Write a new token (mode 0600) unless one exists; True if written."""
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


def read_metrics_token(path: Path | None) -> str | None:
    """The token, or None when there is none (then only staff may read the metrics)."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None
