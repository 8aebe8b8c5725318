"""The console's rates and its under-performing hops, from samples of the broker's counters (pure
functions: no broker here; the browser test drives a real one)."""

from __future__ import annotations

import pytest

from scte.web.broker_admin import BrokerMetrics, QueueRow, SubscriptionRow, TopicRow
from scte.web.console import flow_map, queue_activity
from scte.web.console_rates import (
    BACKLOG_AGE,
    WINDOW_SECONDS,
    QueueFigures,
    RateHistory,
    Sample,
    sample_of,
    sample_seconds,
    sparkline,
)


def _sample(at: float, sent: int, received: int = 0, deleted: int = 0, visible: int = 0, oldest: float = 0.0) -> Sample:
    return Sample(at, {"search": QueueFigures(sent, received, deleted, visible, oldest)}, {"members.fifo": sent})


def _history(*samples: Sample) -> RateHistory:
    history = RateHistory()
    for s in samples:
        history.add(s)
    return history


def test_rates_are_differences_of_counts_over_time() -> None:
    history = _history(_sample(0, 0), _sample(10, 20, 10, 5), _sample(20, 50, 30, 25))
    points = history.points("search")
    assert [(p.at, p.sent, p.received, p.deleted) for p in points] == [(10, 2.0, 1.0, 0.5), (20, 3.0, 2.0, 2.0)]
    assert history.rate("search", "sent") == pytest.approx(2.5)
    assert history.rate("search", "deleted", over=10) == pytest.approx(2.0)
    assert history.topic_rate("members.fifo") == pytest.approx(2.5)
    assert history.rate("nowhere", "sent") is None
    assert _history(_sample(0, 5)).rate("search", "sent") is None  # one sample: no rate yet


def test_a_broker_restart_counts_from_zero() -> None:
    history = _history(_sample(0, 100), _sample(10, 30))
    assert history.points("search")[0].sent == 3.0


def test_the_window_keeps_fifteen_minutes() -> None:
    history = _history(*(_sample(t, t) for t in range(0, 2000, 10)))
    assert history.samples[1].at >= 1990 - WINDOW_SECONDS
    assert history.samples[0].at < 1990 - WINDOW_SECONDS  # one before the window rates its first interval
    history.add(_sample(5, 0))  # out of order: ignored
    assert history.samples[-1].at == 1990


def test_a_growing_backlog_is_an_under_performing_hop() -> None:
    verdict = _history(_sample(0, 0, visible=1), _sample(10, 5, visible=3), _sample(20, 9, visible=3)).verdict("search")
    assert verdict.slow and "backlog growing (1 → 3 waiting)" in verdict.reasons
    # a backlog that went down on the way is not growing
    assert (
        not _history(_sample(0, 0, visible=1), _sample(10, 5, visible=0), _sample(20, 9, visible=3))
        .verdict("search")
        .slow
    )
    # nor one that stays put
    assert not _history(*(_sample(t, t, visible=4) for t in (0, 10, 20))).verdict("search").slow


def test_a_rising_age_is_an_under_performing_hop() -> None:
    verdict = _history(*(_sample(t, 1, visible=1, oldest=5.0 + t) for t in (0, 10, 20))).verdict("search")
    assert verdict.slow and verdict.reasons == ("oldest message ageing (5 → 25 s)",)
    # young messages coming and going: the age does not keep up with the clock
    assert not _history(*(_sample(t, 1, visible=1, oldest=2.0 + t / 10) for t in (0, 10, 20))).verdict("search").slow


def test_an_old_message_is_slow_without_history() -> None:
    verdict = RateHistory().verdict("search", visible=2, oldest=BACKLOG_AGE + 1)
    assert verdict.slow and verdict.reasons == (f"a message has waited {BACKLOG_AGE + 1:.0f} s",)
    assert not RateHistory().verdict("search", visible=0, oldest=BACKLOG_AGE + 1).slow


def test_a_sample_from_the_brokers_metrics() -> None:
    metrics = BrokerMetrics(
        oldest={"search": 4.0}, visible={"search": 2}, sent={"search": 9}, received={"search": 7}, published={"t": 3}
    )
    sample = sample_of(metrics, at=42.0)
    assert sample.queues["search"] == QueueFigures(9, 7, 0, 2, 4.0) and sample.topics == {"t": 3}


def test_the_sample_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCTE_CONSOLE_SAMPLE_SECONDS", "2.5")
    assert sample_seconds() == 2.5
    monkeypatch.setenv("SCTE_CONSOLE_SAMPLE_SECONDS", "0")
    assert sample_seconds() == 0
    monkeypatch.setenv("SCTE_CONSOLE_SAMPLE_SECONDS", "often")
    assert sample_seconds() == 10.0


def test_the_chart_spans_the_window_and_scales_to_the_highest_rate() -> None:
    now = 1000.0
    history = _history(_sample(now - 20, 0), _sample(now - 10, 40, 20), _sample(now, 60, 60))
    chart = sparkline(history.points("search"), now)
    assert chart["count"] == 2 and chart["top"] == 4.0
    sent = [tuple(map(float, xy.split(","))) for xy in chart["lines"]["sent"].split()]
    assert sent[-1][0] == pytest.approx(chart["width"])  # now is the right edge
    assert min(y for _, y in sent) == pytest.approx(2.0)  # the highest rate touches the top
    assert sparkline([], now)["count"] == 0


def _queue(name: str, visible: int = 0, age: float | None = None) -> QueueRow:
    return QueueRow(name, visible, 0, 0, age, f"{name}-dlq", False, sent=3, received=2, deleted=2)


def test_the_map_carries_live_rates_and_marks_the_stuck_hop() -> None:
    topics = [TopicRow("members.fifo", (SubscriptionRow("members.fifo", "sqs", "search"),), published=60)]
    history = _history(*(_sample(t, 6 * t, visible=int(t), oldest=5.0 + t) for t in (0, 10, 20)))
    layout = flow_map(topics, [_queue("search", visible=20, age=25.0)], history)
    publish = next(e for e in layout["edges"] if e["kind"] == "publish")
    assert publish["label"] == "60 published, 360/min"
    consume = next(e for e in layout["edges"] if e["kind"] == "consume")
    assert consume["slow"] and "backlog growing (0 → 20 waiting)" in consume["reasons"]
    assert layout["slow"] == ["search"]


def test_consumers_per_queue_come_from_the_services_health() -> None:
    services = [
        {"name": "search", "status": "ok", "consumer": {"queue": "search"}},
        {"name": "members", "status": "down", "consumer": None},
        {"name": "reports", "status": "ok", "consumer": {"queue": "reports"}},
    ]
    queues = [_queue("search"), _queue("members.fifo"), _queue("reports.fifo")]
    activity = queue_activity(queues, RateHistory(), services, 0.0)
    assert activity["search"]["consumers"] == ["search"]
    assert activity["members.fifo"]["consumers"] == []  # not answering: not consuming as far as anyone knows
    assert activity["reports.fifo"]["consumers"] == ["reports"]
