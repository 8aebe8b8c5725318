"""The operations console (`/console`): queues and topics, each service's health, dead letters.

Who may open it: staff only (a member or a company admin gets 403, a signed-out visitor sign-in), every
page and every form. The pages read and act through REST APIs only: the broker's SQS and SNS APIs signed
with the install's admin key (`scte.web.broker_admin`), and each service's `/health` (with its outbox
backlog). Every form carries the CSRF token. Every string from a message is autoescaped by the templates:
a body holding `<script>` is shown as text.

`/console` works without JavaScript (a plain page, with a link to load it again); with JavaScript, htmx
reloads its figures every few seconds from `/console/live` (the same fragment, rendered alone).
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.broker_admin import BrokerAdmin, BrokerUnavailable, QueueNotFound, is_dead_letter_queue
from scte.web.client import ServiceDown, ServiceError
from scte.web.site import Page, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_SELECTION = 100
LIVE_SECONDS = 5


def _admin(page: Page) -> BrokerAdmin:
    admin = getattr(page.request.app.state, "broker_admin", None)
    if not isinstance(admin, BrokerAdmin):
        raise ServiceDown("broker", "the gateway has no broker admin key")
    return admin


def _queue_name(name: str) -> str:
    if not _QUEUE_NAME.match(name):
        raise ServiceError(404, "not_found", "There is no such queue.")
    return name


async def _health(page: Page) -> list[dict[str, Any]]:
    """Each service's `/health` as it answers it (status, outbox backlog); down when it does not."""

    async def one(name: str) -> dict[str, Any]:
        try:
            body = await page.services.get(name, "/health")
        except (ServiceDown, ServiceError) as exc:
            return {"name": name, "status": "down", "detail": str(exc)}
        body = body if isinstance(body, dict) else {}
        return {"name": name, "status": str(body.get("status", "unknown")), "outbox": body.get("outbox_pending")}

    return list(await asyncio.gather(*(one(name) for name in sorted(page.site.clients))))


async def _overview(page: Page) -> dict[str, Any]:
    admin = _admin(page)
    try:
        queues, topics = await asyncio.gather(admin.queues(), admin.topics())
        broker_error = None
    except BrokerUnavailable as exc:
        queues, topics, broker_error = [], [], str(exc)
    return {
        "queues": [q for q in queues if not q.is_dlq],
        "dead_letter_queues": [q for q in queues if q.is_dlq],
        "topics": topics,
        "services": await _health(page),
        "broker_error": broker_error,
        "live_seconds": LIVE_SECONDS,
    }


@router.get("/console")
async def console_home(page: Staff) -> Response:
    return page.render("console/home.html", title="Operations console", **await _overview(page))


@router.get("/console/live")
async def console_live(page: Staff) -> Response:
    """The figures of `/console` alone (what htmx swaps in every LIVE_SECONDS)."""
    return page.render("console/live.html", **await _overview(page))


async def _dlq_page(page: Page, name: str, status: int = 200, error: str | None = None) -> Response:
    if not is_dead_letter_queue(name):
        raise ServiceError(404, "not_found", "That queue is not a dead-letter queue.")
    admin = _admin(page)
    try:
        letters = await admin.dead_letters(name)
    except QueueNotFound:
        raise ServiceError(404, "not_found", "There is no such queue.") from None
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    return page.render(
        "console/dlq.html", status=status, title=f"Dead letters of {name}", queue=name, letters=letters, error=error
    )


@router.get("/console/queues/{name}")
async def dead_letter_queue(name: str, page: Staff) -> Response:
    return await _dlq_page(page, _queue_name(name))


def _selected(values: list[Any]) -> list[str]:
    ids = [v for v in values if isinstance(v, str) and _MESSAGE_ID.match(v)]
    return list(dict.fromkeys(ids))[:MAX_SELECTION]


@router.post("/console/queues/{name}/redrive")
async def redrive(name: str, page: Staff) -> Response:
    """`only=<id>` moves that message; `id=<id>` (repeated) the selection; `all=yes` every message (a move
    task). Back to the DLQ's page with how many moved."""
    form = await page.form()
    name = _queue_name(name)
    if not is_dead_letter_queue(name):
        raise ServiceError(404, "not_found", "That queue is not a dead-letter queue.")
    admin = _admin(page)
    try:
        if form.get("all") == "yes":
            await admin.redrive_all(name)
            return page.redirect(f"/console/queues/{name}?notice=redrive-started")
        only = form.get("only")
        ids = _selected([only]) if isinstance(only, str) and only else _selected(form.getlist("id"))
        if not ids:
            return await _dlq_page(page, name, status=400, error="Select at least one message to redrive.")
        moved = await admin.redrive(name, ids)
    except QueueNotFound:
        raise ServiceError(404, "not_found", "There is no such queue.") from None
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    return page.redirect(f"/console/queues/{name}?notice=redriven&moved={moved}")


@router.get("/console/queues/{name}/purge")
async def purge_confirm(name: str, page: Staff) -> Response:
    name = _queue_name(name)
    if not is_dead_letter_queue(name):
        raise ServiceError(404, "not_found", "Only a dead-letter queue can be purged here.")
    return page.render("console/purge.html", title=f"Purge {name}", queue=name)


@router.post("/console/queues/{name}/purge")
async def purge(name: str, page: Staff) -> Response:
    form = await page.form()
    name = _queue_name(name)
    if not is_dead_letter_queue(name):
        raise ServiceError(404, "not_found", "Only a dead-letter queue can be purged here.")
    if form.get("confirm") != "yes":
        return page.render(
            "console/purge.html",
            status=400,
            title=f"Purge {name}",
            queue=name,
            error="Tick the box to confirm that every message of this queue is deleted.",
        )
    try:
        await _admin(page).purge(name)
    except QueueNotFound:
        raise ServiceError(404, "not_found", "There is no such queue.") from None
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    return page.redirect(f"/console/queues/{name}?notice=purged")


# -- the data-flow map -------------------------------------------------------------------------------------

MAP_ROW = 34
MAP_COLUMNS = (10, 250, 490, 730)
"""x of each column: publishing service, topic, queue, consuming service."""
MAP_NODE_WIDTH = 160
BACKLOG_AGE = 60.0
"""A queue whose oldest message is older than this (seconds) is marked as a slow hop."""


def _service_of(name: str) -> str:
    return name.removesuffix(".fifo")


def flow_map(topics: list[Any], queues: list[Any]) -> dict[str, Any]:
    """The layout of the map: services publish to their topic, topics deliver to the subscribed queues,
    each queue is consumed by its service (the topology's naming: a topic and a queue are named for
    their service). Each edge carries the broker's count of messages over it since it started; a queue
    with messages waiting longer than BACKLOG_AGE is marked."""
    by_queue = {q.name: q for q in queues}
    topic_rows = sorted(topics, key=lambda t: t.name)
    queue_names = sorted(
        {s.endpoint for t in topic_rows for s in t.subscriptions if s.protocol == "sqs"} | set(by_queue)
    )
    columns: list[list[dict[str, Any]]] = [[], [], [], []]
    where: dict[tuple[int, str], tuple[float, float]] = {}

    def node(column: int, key: str, label: str, **extra: Any) -> None:
        y = 20 + len(columns[column]) * MAP_ROW
        x = MAP_COLUMNS[column]
        columns[column].append({"x": x, "y": y, "label": label, "key": key, **extra})
        where[(column, key)] = (x, y + 12)

    for t in topic_rows:
        node(0, t.name, _service_of(t.name), kind="service")
        node(1, t.name, t.name, kind="topic")
    for name in queue_names:
        q = by_queue.get(name)
        slow = q is not None and (q.oldest_age or 0) > BACKLOG_AGE and q.visible > 0
        node(2, name, name, kind="queue", slow=slow, waiting=q.visible if q else None)
        node(3, name, _service_of(name), kind="service")
    edges: list[dict[str, Any]] = []

    def edge(a: tuple[int, str], b: tuple[int, str], label: str, kind: str, slow: bool = False) -> None:
        (x1, y1), (x2, y2) = where[a], where[b]
        edges.append(
            {
                "x1": x1 + MAP_NODE_WIDTH,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "label": label,
                "kind": kind,
                "slow": slow,
                "source": a[1],
                "target": b[1],
            }
        )

    for t in topic_rows:
        edge((0, t.name), (1, t.name), f"{t.published if t.published is not None else '?'} published", "publish")
        for s in t.subscriptions:
            if s.protocol == "sqs" and (2, s.endpoint) in where:
                edge((1, t.name), (2, s.endpoint), "", "deliver")
    for name in queue_names:
        q = by_queue.get(name)
        slow = q is not None and (q.oldest_age or 0) > BACKLOG_AGE and q.visible > 0
        label = f"{q.received if q and q.received is not None else '?'} received" if q else ""
        edge((2, name), (3, name), label, "consume", slow)
    height = 40 + max((len(c) for c in columns), default=1) * MAP_ROW
    return {
        "nodes": [n for c in columns for n in c],
        "edges": edges,
        "width": MAP_COLUMNS[-1] + MAP_NODE_WIDTH + 20,
        "height": height,
        "node_width": MAP_NODE_WIDTH,
        "slow": [n["key"] for n in columns[2] if n.get("slow")],
    }


@router.get("/console/map")
async def data_flow_map(page: Staff) -> Response:
    admin = _admin(page)
    try:
        queues, topics = await asyncio.gather(admin.queues(), admin.topics())
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    layout = flow_map(topics, [q for q in queues if not q.is_dlq])
    return page.render("console/map.html", title="Data-flow map", topics=topics, **layout)
