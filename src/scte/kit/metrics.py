"""`GET /metrics` of a service (and of the gateway), in the Prometheus text format (prometheus-client).

What it holds: request latency per route and status (`scte_http_request_duration_seconds`), handler
latency per event type and outcome (`scte_handler_duration_seconds`), how long messages waited before
their handler (`scte_handler_queue_wait_seconds`), the outbox's backlog and the age of its oldest
undelivered event (`scte_outbox_pending`, `scte_outbox_lag_seconds`), the messages a consumer holds
(`scte_consumer_in_flight`), and prometheus-client's process figures (CPU, memory, open files).

Who may read it: a caller with the install's metrics token (`Authorization: Bearer <token>`; the file
`<data>/keys/metrics-token`, mode 0600, written by `scte up`: a Prometheus scrape reads it with
`authorization: {credentials_file: ...}`), or a signed-in staff member's token. Anyone else gets 401
(no credentials, or wrong ones) or 403 (a valid token without the staff role). The gateway forwards
`/api/<service>/metrics` like any path, so the check is in the service.

The metrics are the process's: one service per process in production. Every series names its
service, so the services of a test sharing one process stay apart.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from scte.kit.auth import AuthError, TokenVerifier
from scte.kit.metrics_token import read_metrics_token

__all__ = [
    "HANDLER_SECONDS",
    "QUEUE_WAIT_SECONDS",
    "REQUEST_SECONDS",
    "MetricsProbe",
    "install_metrics_route",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0)

REQUEST_SECONDS = Histogram(
    "scte_http_request_duration_seconds",
    "Time to answer an HTTP request, by service, method, route (its template) and status code.",
    ("service", "method", "route", "status"),
    buckets=_LATENCY_BUCKETS,
)
HANDLER_SECONDS = Histogram(
    "scte_handler_duration_seconds",
    "Time a message handler ran (with its inbox transaction), by service, event type and outcome.",
    ("service", "event_type", "outcome"),
    buckets=_LATENCY_BUCKETS,
)
QUEUE_WAIT_SECONDS = Histogram(
    "scte_handler_queue_wait_seconds",
    "Time from a message's arrival at its queue to the start of its handler, by service and queue.",
    ("service", "queue"),
    buckets=_WAIT_BUCKETS,
)
OUTBOX_PENDING = Gauge("scte_outbox_pending", "Events committed to the outbox, not yet delivered.", ("service",))
OUTBOX_LAG = Gauge(
    "scte_outbox_lag_seconds", "Age of the oldest undelivered event in the outbox (0 when empty).", ("service",)
)
IN_FLIGHT = Gauge("scte_consumer_in_flight", "Messages a consumer holds (received, not settled).", ("service", "queue"))

MetricsProbe = Callable[[], Awaitable[dict[str, Any]]]
"""`app.state.metrics_probe`: the figures read at scrape time: `outbox_pending`, `outbox_lag_seconds`,
`in_flight` (queue -> messages)."""


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _allowed(request: Request, token_path: Path | None) -> JSONResponse | None:
    """None when the caller may read the metrics, else the refusal."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return _refusal(401, "unauthorized", "send Authorization: Bearer <the install's metrics token>")
    expected = read_metrics_token(token_path)
    if expected is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    verifier = getattr(request.app.state, "token_verifier", None)
    if isinstance(verifier, TokenVerifier):
        try:
            principal = verifier.verify(given)
        except AuthError:
            return _refusal(401, "unauthorized", "neither the metrics token nor a valid sign-in token")
        if principal.is_staff:
            return None
        return _refusal(403, "forbidden", "the metrics are for staff and the install's scraper only")
    return _refusal(401, "unauthorized", "not the metrics token")


def install_metrics_route(app: FastAPI, service: str, token_path: Callable[[Request], Path | None]) -> None:
    """`GET /metrics` on `app` (left out of its OpenAPI document: it is for the operator's scraper)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        refused = _allowed(request, token_path(request))
        if refused is not None:
            return refused
        probe: MetricsProbe | None = getattr(request.app.state, "metrics_probe", None)
        if probe is not None:
            figures = await probe()
            if "outbox_pending" in figures:
                OUTBOX_PENDING.labels(service).set(figures["outbox_pending"])
                OUTBOX_LAG.labels(service).set(figures.get("outbox_lag_seconds", 0.0))
            for queue, held in figures.get("in_flight", {}).items():
                IN_FLIGHT.labels(service, queue).set(held)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
