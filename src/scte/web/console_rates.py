"""Rates over the last 15 minutes, and which hops under-perform: the console's memory of the broker.

The broker counts, per queue, messages sent, received and deleted since it started, and gauges its
depth and the age of its oldest message (`/metrics`, no row counted). A rate is a difference of counts
over time, so the gateway keeps a sample of those figures every SAMPLE_SECONDS (one scrape of `/metrics`,
in the background while the gateway runs, whether or not anyone looks), for WINDOW_SECONDS. The
console draws each queue's send / receive / delete rates from them (server-rendered SVG, no script),
and marks a queue as an under-performing hop when, over its last TREND_SAMPLES samples,

- its backlog grows: the messages waiting never fell and rose in all (the consumer takes fewer than
  arrive), or
- the age of its oldest message rises with the clock (at least RISING_SHARE of the time that passed:
  nobody takes the oldest message), once it is RISING_FROM seconds old, or
- a message has waited over BACKLOG_AGE seconds (true without any history).

A counter that went down (the broker restarted) counts from zero again, as Prometheus' `rate` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scte.web.broker_admin import BrokerAdmin, BrokerMetrics, BrokerUnavailable

__all__ = [
    "BACKLOG_AGE",
    "WINDOW_SECONDS",
    "QueueFigures",
    "RateHistory",
    "Sample",
    "Verdict",
    "sample_of",
    "sample_seconds",
    "sampling",
    "sparkline",
]

log = logging.getLogger(__name__)

WINDOW_SECONDS = 900.0
SAMPLE_SECONDS = 10.0
TREND_SAMPLES = 3
RISING_SHARE = 0.8
RISING_FROM = 10.0
BACKLOG_AGE = 60.0


def sample_seconds() -> float:
    """`SCTE_CONSOLE_SAMPLE_SECONDS` (default SAMPLE_SECONDS; 0 turns sampling off)."""
    raw = os.environ.get("SCTE_CONSOLE_SAMPLE_SECONDS", "")
    try:
        value = float(raw) if raw else SAMPLE_SECONDS
    except ValueError:
        log.warning("SCTE_CONSOLE_SAMPLE_SECONDS=%r is not a number: %s s", raw, SAMPLE_SECONDS)
        return SAMPLE_SECONDS
    return max(0.0, value)


@dataclass(frozen=True)
class QueueFigures:
    sent: int
    received: int
    deleted: int
    visible: int
    oldest: float


@dataclass(frozen=True)
class Sample:
    at: float
    """Wall-clock seconds."""
    queues: Mapping[str, QueueFigures]
    topics: Mapping[str, int]
    """Published per topic."""


def sample_of(metrics: BrokerMetrics, at: float | None = None) -> Sample:
    names = set(metrics.sent) | set(metrics.received) | set(metrics.deleted) | set(metrics.visible)
    queues = {
        name: QueueFigures(
            metrics.sent.get(name, 0),
            metrics.received.get(name, 0),
            metrics.deleted.get(name, 0),
            metrics.visible.get(name, 0),
            metrics.oldest.get(name, 0.0),
        )
        for name in names
    }
    return Sample(time.time() if at is None else at, queues, dict(metrics.published))


@dataclass(frozen=True)
class Point:
    """Messages per second over one interval between two samples, ending at `at`."""

    at: float
    sent: float
    received: float
    deleted: float


@dataclass(frozen=True)
class Verdict:
    slow: bool
    reasons: tuple[str, ...]


def _delta(now: int, before: int) -> int:
    return now - before if now >= before else now  # the broker restarted: counted from zero again


class RateHistory:
    """The samples of the last `window` seconds (and the one just before, to rate the first interval)."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.samples: deque[Sample] = deque()

    def add(self, sample: Sample) -> None:
        if self.samples and sample.at <= self.samples[-1].at:
            return  # a clock step back: keep the series ordered
        self.samples.append(sample)
        while len(self.samples) > 2 and self.samples[1].at < sample.at - self.window:
            self.samples.popleft()

    def points(self, queue: str) -> list[Point]:
        out = []
        for before, after in itertools.pairwise(self.samples):
            a, b = before.queues.get(queue), after.queues.get(queue)
            elapsed = after.at - before.at
            if a is None or b is None or elapsed <= 0:
                continue
            out.append(
                Point(
                    after.at,
                    _delta(b.sent, a.sent) / elapsed,
                    _delta(b.received, a.received) / elapsed,
                    _delta(b.deleted, a.deleted) / elapsed,
                )
            )
        return out

    def rate(self, queue: str, what: str, over: float = 60.0) -> float | None:
        """Messages per second of `what` (sent, received, deleted) over the last `over` seconds."""
        latest = self.samples[-1] if self.samples else None
        if latest is None or queue not in latest.queues:
            return None
        first = next((s for s in self.samples if s.at >= latest.at - over and queue in s.queues), None)
        if first is None or first is latest:
            return None
        count = _delta(getattr(latest.queues[queue], what), getattr(first.queues[queue], what))
        return count / (latest.at - first.at)

    def topic_rate(self, topic: str, over: float = 60.0) -> float | None:
        latest = self.samples[-1] if self.samples else None
        if latest is None or topic not in latest.topics:
            return None
        first = next((s for s in self.samples if s.at >= latest.at - over and topic in s.topics), None)
        if first is None or first is latest:
            return None
        return _delta(latest.topics[topic], first.topics[topic]) / (latest.at - first.at)

    def verdict(self, queue: str, visible: int | None = None, oldest: float | None = None) -> Verdict:
        """Whether `queue` is an under-performing hop, and why (the module's rules)."""
        recent = [s.queues[queue] for s in self.samples if queue in s.queues][-TREND_SAMPLES:]
        times = [s.at for s in self.samples if queue in s.queues][-TREND_SAMPLES:]
        reasons = []
        if len(recent) >= TREND_SAMPLES:
            depths = [f.visible for f in recent]
            if all(b >= a for a, b in itertools.pairwise(depths)) and depths[-1] > depths[0]:
                reasons.append(f"backlog growing ({depths[0]} → {depths[-1]} waiting)")
            ages = [f.oldest for f in recent]
            elapsed = times[-1] - times[0]
            if ages[-1] >= RISING_FROM and elapsed > 0 and ages[-1] - ages[0] >= RISING_SHARE * elapsed:
                reasons.append(f"oldest message ageing ({ages[0]:.0f} → {ages[-1]:.0f} s)")
        now_visible = visible if visible is not None else (recent[-1].visible if recent else 0)
        now_oldest = oldest if oldest is not None else (recent[-1].oldest if recent else 0.0)
        if now_visible > 0 and (now_oldest or 0.0) > BACKLOG_AGE and not any("ageing" in r for r in reasons):
            reasons.append(f"a message has waited {now_oldest:.0f} s")
        return Verdict(bool(reasons), tuple(reasons))


async def _sample_forever(admin: BrokerAdmin, history: RateHistory, interval: float) -> None:
    while True:
        try:
            metrics = await admin.metrics()
            if metrics.sent or metrics.visible or metrics.published:
                history.add(sample_of(metrics))
        except (BrokerUnavailable, OSError) as exc:  # the broker is restarting: the next sample will do
            log.info("console sampling: %s", exc)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def sampling(app: Any, interval: float | None = None) -> Any:
    """While the block runs, sample the broker of `app.state.broker_admin` into `app.state.rate_history`
    (nothing when the gateway has no broker admin or sampling is off)."""
    admin = getattr(app.state, "broker_admin", None)
    interval = sample_seconds() if interval is None else interval
    app.state.rate_history = RateHistory()
    if not isinstance(admin, BrokerAdmin) or interval <= 0:
        yield
        return
    task = asyncio.create_task(_sample_forever(admin, app.state.rate_history, interval), name="console-sampling")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- the small charts ----------------------------------------------------------------------------------------

CHART_WIDTH = 180
CHART_HEIGHT = 36
SERIES = ("sent", "received", "deleted")


def sparkline(points: Iterable[Point], now: float, window: float = WINDOW_SECONDS) -> dict[str, Any]:
    """The chart of one queue: per series an SVG polyline's points (x: time over the window, y: rate
    scaled to the highest rate shown), and that highest rate."""
    pts = [p for p in points if p.at >= now - window]
    top = max((max(p.sent, p.received, p.deleted) for p in pts), default=0.0)
    scale = (CHART_HEIGHT - 4) / top if top > 0 else 0.0
    lines = {}
    for name in SERIES:
        coords = []
        for p in pts:
            x = (p.at - (now - window)) / window * CHART_WIDTH
            y = CHART_HEIGHT - 2 - getattr(p, name) * scale
            coords.append(f"{x:.1f},{y:.1f}")
        lines[name] = " ".join(coords)
    return {"lines": lines, "top": top, "count": len(pts), "width": CHART_WIDTH, "height": CHART_HEIGHT}
