"""The visitor's address behind the gateway, which only the gateway can state.

Services listen on loopback and every visitor arrives through the gateway, so a service sees the
gateway's address on every request. The gateway therefore sends the address it was called from in
`X-Forwarded-For`, with the install's gateway secret in `X-SCTE-Gateway-Secret`. A service believes
the forwarded address only next to that secret: any other caller (a process on the host, a visitor
sending its own `X-Forwarded-For` through the gateway, which replaces it) is known by the address it
connects from. Per-address limits (sign-in, registration) key on this.

The secret is 32 random bytes made by `scte up` on the first start (`<data>/keys/gateway-secret`,
mode 0600), read by the gateway and the services, never printed.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from scte.kit.secret_file import write_new_secret
from scte.kit.settings import Settings

__all__ = [
    "FORWARDED_FOR",
    "GATEWAY_SECRET_HEADER",
    "ClientAddress",
    "client_address",
    "ensure_gateway_secret",
    "forwarded_headers",
    "gateway_secret_path",
    "read_gateway_secret",
]

GATEWAY_SECRET_HEADER = "x-scte-gateway-secret"
FORWARDED_FOR = "x-forwarded-for"


def gateway_secret_path(settings: Settings | Path) -> Path:
    """Where the install's secret is: under its data directory (given, or the settings')."""
    data_dir = settings if isinstance(settings, Path) else settings.data_dir
    return data_dir / "keys" / "gateway-secret"


def forwarded_headers(address: str | None, secret: str | None) -> dict[str, str]:
    """What the gateway (its proxy and its website) adds to a call to a service on a visitor's behalf."""
    headers = {FORWARDED_FOR: address or "unknown"}
    if secret is not None:
        headers[GATEWAY_SECRET_HEADER] = secret
    return headers


def ensure_gateway_secret(path: Path) -> bool:
    """Write a new secret (mode 0600) unless one exists; True if written."""
    return write_new_secret(path)


def read_gateway_secret(path: Path) -> str | None:
    """The install's gateway secret, or None when there is none (then no forwarded address is believed)."""
    try:
        secret = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return secret or None


_UNSET = object()


def _secret(request: Request) -> str | None:
    state = request.app.state
    cached = getattr(state, "gateway_secret", _UNSET)
    if cached is not _UNSET:
        return cached if isinstance(cached, str) else None
    context = getattr(state, "context", None)
    settings = getattr(context, "settings", None)
    secret = read_gateway_secret(gateway_secret_path(settings)) if isinstance(settings, Settings) else None
    if secret is not None:  # not cached while absent: the service may start before `scte up` writes it
        state.gateway_secret = secret
    return secret


def client_address(request: Request) -> str:
    """The visitor's address: the gateway's forwarded one when it proves itself, else the peer's."""
    peer = request.client.host if request.client is not None else "unknown"
    forwarded = request.headers.get(FORWARDED_FOR, "")
    given = request.headers.get(GATEWAY_SECRET_HEADER)
    if not forwarded or given is None:
        return peer
    secret = _secret(request)
    if secret is None or not hmac.compare_digest(given.encode(), secret.encode()):
        return peer
    # The gateway sends exactly one address (its own caller); the last is the one it appended.
    return forwarded.rsplit(",", 1)[-1].strip() or peer


ClientAddress = Annotated[str, Depends(client_address)]
