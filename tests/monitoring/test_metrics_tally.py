"""The request series are tallied per event and published in one go: what a scrape shows after
publishing is what observing each event directly would have shown, and an event's series are
published no later than the event is handed on."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.monitoring import metrics
from gateway.monitoring.metrics import _Tally, metrics_publish, usage_event_observe
from gateway.usage.events import UsageEvent
from gateway.usage.queues import BufferedUsageQueue

BUCKETS = (0.05, 0.1, 0.25, 1.0)
# On a bound (counts in that bucket, as observe's "<="), between bounds, past the last bound
# (+Inf), zero and negative.
AMOUNTS = (0.05, 0.1, 0.07, 0.3, 2.0, 0.0, -1.0, 0.05, 99.0, 1.0)


def _series() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("t_requests", "requests", ("alias",), registry=registry)
    histogram = Histogram("t_latency", "latency", ("alias",), buckets=BUCKETS, registry=registry)
    return registry, counter, histogram


def _exposition(registry: CollectorRegistry) -> list[str]:
    # _created samples are the series' creation times: the only lines allowed to differ.
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_a_published_tally_exposes_what_observing_each_value_does() -> None:
    direct, d_counter, d_histogram = _series()
    tallied, t_counter, t_histogram = _series()
    tally = _Tally()
    for i, amount in enumerate(AMOUNTS):
        alias = "a" if i % 3 else "b"
        d_counter.labels(alias).inc(amount if amount > 0 else 1)
        d_histogram.labels(alias).observe(amount)
        tally.count(t_counter, (alias,), amount if amount > 0 else 1)
        tally.observe(t_histogram, (alias,), amount)

    assert "t_latency_bucket" not in "".join(_exposition(tallied))  # nothing before publish
    tally.publish()
    assert _exposition(tallied) == _exposition(direct)
    assert 't_latency_bucket{alias="a",le="+Inf"} 6.0' in _exposition(tallied)

    tally.publish()  # published counts are not published twice
    assert _exposition(tallied) == _exposition(direct)


def _event(request_id: str) -> UsageEvent:
    # No instance, no alias: only the endpoint's overhead series, which no other test names.
    event = UsageEvent(request_id, 0.0, "tally-endpoint", 1, "", 200)
    event.latency_ms = 3.0
    return event


def _overhead_count() -> float:
    value = metrics.REGISTRY.get_sample_value(
        "gateway_overhead_seconds_count", {"endpoint": "tally-endpoint"}
    )
    return value or 0.0


class _Handing(BufferedUsageQueue):
    """Records, at each delivery, how many of this test's events the series show."""

    target = "test"

    def __init__(self) -> None:
        super().__init__()
        self.seen_at_delivery: list[tuple[int, float]] = []

    async def deliver(self, payloads: list[bytes]) -> None:
        self.seen_at_delivery.append((len(payloads), _overhead_count()))

    def deliver_sync(self, payloads: list[bytes]) -> None:
        self.seen_at_delivery.append((len(payloads), _overhead_count()))


@pytest.mark.django_db
def test_events_are_published_before_they_are_handed_on() -> None:
    metrics_publish()
    before = _overhead_count()
    queue = _Handing()

    async def scenario() -> None:
        for n in range(3):
            queue.put(_event(f"tally-{n}"))
        assert _overhead_count() == before  # tallied, not yet published
        await queue.aclose()

    asyncio.run(scenario())
    assert queue.seen_at_delivery == [(3, before + 3)]

    # Without an event loop put() flushes at once, published first all the same.
    queue = _Handing()
    queue.put(_event("tally-sync"))
    assert queue.seen_at_delivery == [(1, before + 4)]
    queue.spool.close()
    queue.journal.close()


class _Gated(_Handing):
    """Holds its first delivery until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.delivering = asyncio.Event()
        self.gate = asyncio.Event()

    async def deliver(self, payloads: list[bytes]) -> None:
        if not self.seen_at_delivery:
            self.delivering.set()
            await self.gate.wait()
        await super().deliver(payloads)


@pytest.mark.django_db
def test_an_event_put_during_a_flush_is_published_before_that_flush_hands_it_on() -> None:
    metrics_publish()
    before = _overhead_count()
    queue = _Gated()

    async def scenario() -> None:
        queue.put(_event("tally-first"))
        flushing = asyncio.ensure_future(queue.flush())
        await queue.delivering.wait()  # the first batch is being sent
        queue.put(_event("tally-late"))  # taken by the same flush, after the first batch
        queue.gate.set()
        await flushing
        await queue.aclose()

    asyncio.run(scenario())
    assert queue.seen_at_delivery == [(1, before + 1), (1, before + 2)]


def test_an_event_tallied_off_the_queue_is_in_the_next_scrape() -> None:
    from gateway.monitoring.scrape import metrics_render

    metrics_publish()
    before = _overhead_count()
    usage_event_observe(_event("tally-scrape"))
    assert _overhead_count() == before
    text = metrics_render().decode()
    assert 'gateway_overhead_seconds_count{endpoint="tally-endpoint"}' in text
    assert _overhead_count() == before + 1
