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
import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.broker_admin import BrokerAdmin, BrokerUnavailable, QueueNotFound, is_dead_letter_queue
from scte.web.client import ServiceDown, ServiceError
from scte.web.console_rates import BACKLOG_AGE, RateHistory, Verdict, sparkline
from scte.web.site import Page, role_page

__all__ = ["BACKLOG_AGE", "flow_map", "queue_activity", "router"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_SELECTION = 100
LIVE_SECONDS = 5
HEALTH_TIMEOUT = 3.0
"""A service that does not answer its `/health` in this time is shown down (a stopped process must not
hold the page)."""


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
    """Each service's `/health` as it answers it (status, outbox backlog, the queue its consumer reads);
    down when it does not answer within HEALTH_TIMEOUT."""

    async def one(name: str) -> dict[str, Any]:
        client = page.site.clients.get(name)
        try:
            if client is None:
                raise httpx.ConnectError("no client")
            response = await client.get("/health", timeout=HEALTH_TIMEOUT)
            body = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            return {"name": name, "status": "down", "detail": type(exc).__name__, "consumer": None}
        body = body if isinstance(body, dict) else {}
        consumer = body.get("consumer") if isinstance(body.get("consumer"), dict) else None
        return {
            "name": name,
            "status": str(body.get("status", "failing")),
            "outbox": body.get("outbox_pending"),
            "consumer": consumer,
        }

    return list(await asyncio.gather(*(one(name) for name in sorted(page.site.clients))))


def _history(page: Page) -> RateHistory:
    history = getattr(page.request.app.state, "rate_history", None)
    return history if isinstance(history, RateHistory) else RateHistory()


def queue_activity(
    queues: list[Any], history: RateHistory, services: list[dict[str, Any]], now: float
) -> dict[str, dict[str, Any]]:
    """Per queue: rates per minute over the last minute, its chart over the window, its consumers (the
    services answering `/health` with a consumer on it) and whether it is an under-performing hop."""
    consumers: dict[str, list[str]] = {}
    for service in services:
        consumer = service.get("consumer")
        if service.get("status") == "ok" and consumer and consumer.get("queue"):
            consumers.setdefault(str(consumer["queue"]), []).append(str(service["name"]))
    out = {}
    for q in queues:
        verdict: Verdict = history.verdict(q.name, q.visible, q.oldest_age)
        per_minute = {
            what: (None if rate is None else rate * 60)
            for what in ("sent", "received", "deleted")
            for rate in [history.rate(q.name, what)]
        }
        out[q.name] = {
            "rates": per_minute,
            "chart": sparkline(history.points(q.name), now),
            "consumers": consumers.get(q.name.removesuffix(".fifo"), []),
            "slow": verdict.slow,
            "reasons": verdict.reasons,
        }
    return out


async def _overview(page: Page) -> dict[str, Any]:
    admin = _admin(page)
    try:
        metrics = await admin.metrics()
        queues, topics = await asyncio.gather(admin.queues(metrics), admin.topics(metrics))
        broker_error = None
    except BrokerUnavailable as exc:
        queues, topics, broker_error = [], [], str(exc)
    services = await _health(page)
    live = [q for q in queues if not q.is_dlq]
    return {
        "queues": live,
        "dead_letter_queues": [q for q in queues if q.is_dlq],
        "activity": queue_activity(live, _history(page), services, time.time()),
        "topics": topics,
        "services": services,
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


# -- replay ------------------------------------------------------------------------------------------------


async def _replay_page(page: Page, name: str, message_id: str, status: int = 200, error: str | None = None) -> Response:
    admin = _admin(page)
    try:
        letter = await admin.peek(name, message_id)
        topic = await admin.topic_of(letter) if letter is not None else None
    except QueueNotFound:
        raise ServiceError(404, "not_found", "There is no such queue.") from None
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    if letter is None:
        raise ServiceError(404, "not_found", "That message is not in this queue (any more).")
    return page.render(
        "console/replay.html",
        status=status,
        title=f"Replay a dead letter of {name}",
        queue=name,
        letter=letter,
        topic=topic,
        error=error,
    )


def _dlq_name(name: str) -> str:
    name = _queue_name(name)
    if not is_dead_letter_queue(name):
        raise ServiceError(404, "not_found", "That queue is not a dead-letter queue.")
    return name


def _one_message_id(value: Any) -> str:
    if not isinstance(value, str) or not _MESSAGE_ID.match(value):
        raise ServiceError(404, "not_found", "There is no such message.")
    return value


@router.get("/console/queues/{name}/replay")
async def replay_confirm(name: str, page: Staff) -> Response:
    """What a replay of one message will do (its event, its topic, the queues subscribed), and the form."""
    return await _replay_page(page, _dlq_name(name), _one_message_id(page.request.query_params.get("id")))


@router.post("/console/queues/{name}/replay")
async def replay(name: str, page: Staff) -> Response:
    """Publish the message's event again to its topic, once the box is ticked (`confirm=yes`)."""
    form = await page.form()
    name = _dlq_name(name)
    message_id = _one_message_id(form.get("id"))
    if form.get("confirm") != "yes":
        return await _replay_page(
            page, name, message_id, status=400, error="Tick the box to confirm that the event is published again."
        )
    try:
        done, topic = await _admin(page).replay(name, message_id)
    except QueueNotFound as exc:
        raise ServiceError(404, "not_found", f"Nothing to publish it to: {exc}.") from None
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    if not done:
        raise ServiceError(404, "not_found", "That message is not in this queue (any more).")
    return page.redirect(f"/console/queues/{name}?notice=replayed&topic={topic}")


# -- the data-flow map -------------------------------------------------------------------------------------

MAP_ROW = 34
MAP_COLUMNS = (10, 250, 490, 730)
"""x of each column: publishing service, topic, queue, consuming service."""
MAP_NODE_WIDTH = 160


def _service_of(name: str) -> str:
    return name.removesuffix(".fifo")


def _per_minute(rate: float | None) -> str:
    if rate is None:
        return ""
    per_minute = rate * 60
    return f"{per_minute:.0f}/min" if per_minute >= 10 or per_minute == 0 else f"{per_minute:.1f}/min"


def flow_map(topics: list[Any], queues: list[Any], history: RateHistory | None = None) -> dict[str, Any]:
    """The layout of the map: services publish to their topic, topics deliver to the subscribed queues,
    each queue is consumed by its service (the topology's naming: a topic and a queue are named for
    their service). Each edge carries the broker's count since it started and, with `history`, the rate
    over the last minute; a queue is marked as an under-performing hop by `RateHistory.verdict` (growing
    backlog, rising age, or a message waiting longer than BACKLOG_AGE)."""
    history = history or RateHistory()
    by_queue = {q.name: q for q in queues}
    topic_rows = sorted(topics, key=lambda t: t.name)
    queue_names = sorted(
        {s.endpoint for t in topic_rows for s in t.subscriptions if s.protocol == "sqs"} | set(by_queue)
    )
    verdicts = {name: history.verdict(name, q.visible, q.oldest_age) for name, q in by_queue.items()}
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
        verdict = verdicts.get(name)
        slow = verdict is not None and verdict.slow
        node(
            2,
            name,
            name,
            kind="queue",
            slow=slow,
            waiting=q.visible if q else None,
            reasons=verdict.reasons if verdict else (),
        )
        node(3, name, _service_of(name), kind="service")
    edges: list[dict[str, Any]] = []

    def edge(
        a: tuple[int, str], b: tuple[int, str], label: str, kind: str, slow: bool = False, reasons: Any = ()
    ) -> None:
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
                "reasons": tuple(reasons),
                "source": a[1],
                "target": b[1],
            }
        )

    for t in topic_rows:
        rate = _per_minute(history.topic_rate(t.name))
        label = f"{t.published if t.published is not None else '?'} published" + (f", {rate}" if rate else "")
        edge((0, t.name), (1, t.name), label, "publish")
        for s in t.subscriptions:
            if s.protocol == "sqs" and (2, s.endpoint) in where:
                edge((1, t.name), (2, s.endpoint), "", "deliver")
    for name in queue_names:
        q = by_queue.get(name)
        verdict = verdicts.get(name)
        label = ""
        if q:
            rate = _per_minute(history.rate(name, "received"))
            label = f"{q.received if q.received is not None else '?'} received" + (f", {rate}" if rate else "")
        edge(
            (2, name),
            (3, name),
            label,
            "consume",
            verdict is not None and verdict.slow,
            verdict.reasons if verdict else (),
        )
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
        metrics = await admin.metrics()
        queues, topics = await asyncio.gather(admin.queues(metrics), admin.topics(metrics))
    except BrokerUnavailable as exc:
        raise ServiceDown("broker", str(exc)) from None
    layout = flow_map(topics, [q for q in queues if not q.is_dlq], _history(page))
    return page.render("console/map.html", title="Data-flow map", topics=topics, **layout)
