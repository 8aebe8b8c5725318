"""The pages' way to the services: their REST APIs, with the signed-in person's token.

Pages never read a service's database; they call the same API a script or another service would,
on the gateway's connections to each service. A refusal (4xx) becomes `ServiceError` with the
service's message and, for validation errors, the fields it names, so a page can show each field's
error; a service that does not answer becomes `ServiceDown` (the page says so, with 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["ServiceDown", "ServiceError", "Services"]


@dataclass
class ServiceError(Exception):
    """The service refused: its status, error code, message, and the message per field (422)."""

    status: int
    code: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class ServiceDown(Exception):
    """The service did not answer (down, timed out, or failed with 5xx)."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service


def _field_errors(details: object) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(details, list):
        return out
    for item in details:
        if not isinstance(item, dict):
            continue
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        name = loc[-1] if loc else ""
        message = str(item.get("msg", "is not valid"))
        message = message.removeprefix("Value error, ")
        if name and name not in out:
            out[name] = message
    return out


class Services:
    """The service APIs as one person sees them (their token, if any)."""

    def __init__(
        self,
        clients: Mapping[str, httpx.AsyncClient],
        token: str | None = None,
        forwarded: Mapping[str, str] | None = None,
    ) -> None:
        self._clients = clients
        self.token = token
        # the visitor's address, as the gateway states it (scte.kit.forwarding): sign-in limits key on it
        self._forwarded = dict(forwarded or {})

    def with_token(self, token: str | None) -> Services:
        return Services(self._clients, token, self._forwarded)

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """The service's answer (2xx); ServiceError for 4xx, ServiceDown otherwise."""
        client = self._clients.get(service)
        if client is None:
            raise ServiceDown(service, "not running")
        headers = dict(self._forwarded)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await client.request(
                method, path, json=json, params=clean, files=files, data=data, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ServiceDown(service, type(exc).__name__) from None
        if response.status_code >= 500:
            raise ServiceDown(service, f"HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            raise ServiceError(
                response.status_code,
                str(body.get("error", "refused")),
                str(body.get("message") or body.get("detail") or "the request was refused"),
                _field_errors(body.get("details")),
            )
        return response

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return (await self.call("GET", service, path, params=params)).json()

    async def post(self, service: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = await self.call("POST", service, path, json=body, **kwargs)
        return response.json() if response.content else None

    async def put(self, service: str, path: str, body: Any = None) -> Any:
        response = await self.call("PUT", service, path, json=body)
        return response.json() if response.content else None

    async def patch(self, service: str, path: str, body: Any = None) -> Any:
        response = await self.call("PATCH", service, path, json=body)
        return response.json() if response.content else None

    async def delete(self, service: str, path: str) -> Any:
        response = await self.call("DELETE", service, path)
        return response.json() if response.content else None
