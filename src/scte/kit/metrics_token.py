"""The install's token for `GET /metrics` (`<data>/keys/metrics-token`, mode 0600): written once by
`scte up`, read by each service and the gateway (`scte.kit.metrics`), never printed. Standard library
only: the supervisor writes it without importing the services' web stack."""

from __future__ import annotations

from pathlib import Path

from scte.kit.secret_file import write_new_secret

__all__ = ["ensure_metrics_token", "read_metrics_token"]


def ensure_metrics_token(path: Path) -> bool:
    """Write a new token (mode 0600) unless one exists; True if written."""
    return write_new_secret(path)


def read_metrics_token(path: Path | None) -> str | None:
    """The token, or None when there is none (then only staff may read the metrics)."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None
