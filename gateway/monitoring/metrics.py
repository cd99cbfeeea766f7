"""Prometheus metrics: the per-request series, observed from usage events.

Per-request series (requests, errors, upstream latency, time to first token, gateway overhead,
tokens, cost) are counted by :func:`usage_event_observe`, called with each usage event as it is
queued: in memory, no SQL, no I/O. Cost here is an *estimate* from the price in the process's route
table snapshot; the recorder's priced ``UsageRecord`` stays the reference for money.

The counts go to a tally of plain dicts and reach prometheus-client's values in one go
(:func:`metrics_publish`) when the usage queue flushes the events they came from, and before
this process renders a scrape. Why: in multiprocess mode each ``labels()`` lookup and each
value update is a locked write to a memory-mapped file, ~2.5 us apiece and ten of them per
request; published per flush, a batch of events pays them once per distinct series. So a
scrape sees a request once its usage event has been handed on (usually within
``GATEWAY_USAGE_LINGER_SECONDS``), never later than the event itself.

Gauges and counters that describe shared state (circuit and health per instance, health probe
outcomes, usage queue depth, spool size, budget use) are read when ``/metrics`` is scraped, in
:mod:`gateway.monitoring.scrape`, which also renders the exposition.

Multiprocess: with several server workers every process has its own counters. When the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` is set *before* the processes start
(``manage.py serve --workers N`` does it, see README), prometheus-client writes each process's
values to files there and a scrape of any worker aggregates all of them.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.core.errors import GatewayError
from gateway.routing.holder import route_tables
from gateway.usage.events import UNKNOWN_MODEL, UsageEvent

if TYPE_CHECKING:
    from gateway.routing.table import RouteTable

logger = logging.getLogger(__name__)

__all__ = [
    "INSTANCE_LABELS",
    "LABEL_MAX",
    "REGISTRY",
    "label_cap",
    "metrics_publish",
    "usage_event_observe",
]

# Per-process registry of the request series (in multiprocess mode their values also go to
# PROMETHEUS_MULTIPROC_DIR and the scrape reads those instead).
REGISTRY = CollectorRegistry(auto_describe=True)
INSTANCE_LABELS = ("provider_id", "provider")
_BY_ALIAS = (*INSTANCE_LABELS, "alias")
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

REQUESTS = Counter(
    "gateway_requests",
    "Requests served, by provider instance, model alias and HTTP status.",
    ("provider_id", "provider", "alias", "status"),
    registry=REGISTRY,
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_latency_seconds",
    "Duration of each upstream attempt until its response headers (streams) or body, by the "
    "attempt's instance and the request's model alias.",
    _BY_ALIAS,
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
TTFT = Histogram(
    "gateway_time_to_first_token_seconds",
    "Streamed requests: time from request start to the first content chunk.",
    _BY_ALIAS,
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "Non-streamed requests: time spent in the gateway (total minus upstream attempts).",
    ("endpoint",),
    buckets=_OVERHEAD_BUCKETS,
    registry=REGISTRY,
)
TOKENS = Counter(
    "gateway_tokens",
    "Tokens reported by upstreams, by instance and kind (prompt, completion, cached).",
    (*INSTANCE_LABELS, "kind"),
    registry=REGISTRY,
)
COST = Counter(
    "gateway_cost_usd",
    "Estimated cost in USD by instance, account group and provider key (route table price; "
    "UsageRecord is the reference). key is the credential's label, never its secret.",
    (*INSTANCE_LABELS, "account_group", "key_id", "key"),
    registry=REGISTRY,
)
ERRORS = Counter(
    "gateway_errors",
    "Requests answered with an error, by instance (the last attempt's, empty when none was "
    "tried), model alias and error type (the gateway's own codes; an upstream's own code "
    "counts as upstream_error).",
    (*_BY_ALIAS, "error_type"),
    registry=REGISTRY,
)

#: Longest label value: names come from the route table (admin-made), capped all the same.
LABEL_MAX = 100


def label_cap(value: str) -> str:
    """A label value cut to :data:`LABEL_MAX` characters."""
    return value[:LABEL_MAX]


def _error_codes() -> frozenset[str]:
    codes: set[str] = set()
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        codes.update(c for c in (cls.default_code, cls.default_type) if c)
    return frozenset(codes)


#: error_type values kept as labels: the gateway's own error codes and types, and the stream
#: outcomes the relay names. Anything else is an upstream's own words (unbounded).
ERROR_TYPES = _error_codes() | {
    "upstream_stream_broken",
    "upstream_stream_error",
    "client_disconnected",
}
UPSTREAM_ERROR = "upstream_error"


def error_label(error_type: str) -> str:
    """The error_type label of an event: its own value when known, else ``upstream_error``."""
    if not error_type:
        return "unknown"
    return error_type if error_type in ERROR_TYPES else UPSTREAM_ERROR


class _Labels:
    """Label values from the route table only: a request's own strings (its ``model``) never
    become a series, so a client cannot grow ``/metrics`` or the process's memory.

    One per route table (a table is replaced, never changed): what an event's labels and
    estimated cost need from it is worked out once per instance, alias and mapping, then
    looked up. Only names the table knows are kept, so the memo is bounded by the table.
    """

    __slots__ = ("_aliases", "_instances", "_rates", "table")

    def __init__(self, table: RouteTable | None) -> None:
        self.table = table
        self._aliases: dict[str, str] = {"": ""}
        self._instances: dict[int | None, tuple[str, str]] = {None: ("", "")}
        self._rates: dict[tuple[str, int], tuple[float, float, float] | None] = {}

    def alias(self, alias: str) -> str:
        label = self._aliases.get(alias)
        if label is None:
            if self.table is None or alias not in self.table.aliases:
                return UNKNOWN_MODEL
            label = self._aliases[alias] = label_cap(alias)
        return label

    def instance(self, provider_id: int | None) -> tuple[str, str]:
        labels = self._instances.get(provider_id)
        if labels is None:
            assert provider_id is not None
            snap = self.table.providers.get(provider_id) if self.table is not None else None
            if snap is None:
                return str(provider_id), UNKNOWN_MODEL
            labels = self._instances[provider_id] = (str(provider_id), label_cap(snap.name))
        return labels

    def rates(self, alias: str, mapping_id: int) -> tuple[float, float, float] | None:
        """(input, cached input, output) per million tokens of the mapping's price, or None
        when the table has no price for it."""
        key = (alias, mapping_id)
        if key in self._rates:
            return self._rates[key]
        rates = None
        candidates = self.table.candidates(alias) if self.table is not None else ()
        for candidate in candidates:
            if candidate.mapping_id == mapping_id:
                price = candidate.price
                if price is not None:
                    cached = price.cached_input_per_million
                    rates = (
                        float(price.input_per_million),
                        float(price.input_per_million if cached is None else cached),
                        float(price.output_per_million),
                    )
                self._rates[key] = rates
                break
        return rates


_labels: _Labels = _Labels(None)


def _labels_for(table: RouteTable | None) -> _Labels:
    global _labels
    if _labels.table is not table:
        _labels = _Labels(table)
    return _labels


def _estimated_cost(event: UsageEvent, labels: _Labels) -> float | None:
    """Cost from the in-memory route table's price of the event's mapping (no SQL)."""
    if event.mapping_id is None or not (event.prompt_tokens or event.completion_tokens):
        return None
    rates = labels.rates(event.model_alias, event.mapping_id)
    if rates is None:
        return None
    input_rate, cached_rate, output_rate = rates
    cached = min(max(0, event.cached_tokens), event.prompt_tokens)
    total = (
        (event.prompt_tokens - cached) * input_rate
        + cached * cached_rate
        + event.completion_tokens * output_rate
    )
    return total / 1_000_000


class _Tally:
    """Increments of the request series not yet published to prometheus-client.

    Keyed by (metric, label values): counters by their amount, histograms by their sum and by
    (bucket index) their counts, so publishing is one update per series and bucket whatever
    the number of events. Observed on the event loop, published there or from the thread that
    renders a scrape: the lock makes the swap and the updates exclusive.
    """

    __slots__ = ("buckets", "counts", "lock", "sums")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
        self.sums: dict[tuple[Histogram, tuple[str, ...]], float] = {}
        self.buckets: dict[tuple[Histogram, tuple[str, ...], int], int] = {}

    def count(self, metric: Counter, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (metric, labels)
        self.counts[key] = self.counts.get(key, 0.0) + amount

    def observe(self, metric: Histogram, labels: tuple[str, ...], amount: float) -> None:
        key = (metric, labels)
        self.sums[key] = self.sums.get(key, 0.0) + amount
        # The first bound >= amount: the bucket Histogram.observe increments.
        bucket = (metric, labels, bisect_left(metric._upper_bounds, amount))
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1

    def publish(self) -> None:
        with self.lock:
            if not self.counts and not self.sums:
                return
            counts, self.counts = self.counts, {}
            sums, self.sums = self.sums, {}
            buckets, self.buckets = self.buckets, {}
        for (counter, labels), amount in counts.items():
            counter.labels(*labels).inc(amount)
        # A histogram child's sum and bucket values are not public API; they are what
        # Histogram.observe updates (tests/monitoring/test_metrics_tally.py pins that the
        # exposition is the same as observing each value).
        for (histogram, labels), total in sums.items():
            histogram.labels(*labels)._sum.inc(total)
        for (histogram, labels, index), n in buckets.items():
            histogram.labels(*labels)._buckets[index].inc(n)


_TALLY = _Tally()


def metrics_publish() -> None:
    """Hand the tallied request series to prometheus-client (usage flush, scrape, shutdown).
    Never raises: metrics must not break a flush or a scrape."""
    try:
        _TALLY.publish()
    except Exception:
        logger.exception("metrics: could not publish the request series")


def usage_event_observe(event: UsageEvent) -> None:
    """Count one request's event in the tally. Cheap and never raises (it runs on the request
    path); :func:`metrics_publish` makes it visible."""
    try:
        labels = _labels_for(route_tables.table)
        pid, name = labels.instance(event.provider_id)
        alias = labels.alias(event.model_alias)
        tally = _TALLY
        with tally.lock:
            tally.count(REQUESTS, (pid, name, alias, str(event.status_code)))
            if event.status_code >= 400:
                tally.count(ERRORS, (pid, name, alias, error_label(event.error_type)))
            upstream_ms = 0.0
            for attempt in event.attempts:
                upstream_ms += attempt.duration_ms
                tally.observe(
                    UPSTREAM_LATENCY,
                    (*labels.instance(attempt.provider_id), alias),
                    attempt.duration_ms / 1000,
                )
            if event.stream:
                if event.ttft_ms is not None and pid:
                    tally.observe(TTFT, (pid, name, alias), event.ttft_ms / 1000)
            else:
                tally.observe(
                    OVERHEAD,
                    (label_cap(event.endpoint),),
                    max(0.0, event.latency_ms - upstream_ms) / 1000,
                )
            if pid:
                for kind, n in (
                    ("prompt", event.prompt_tokens),
                    ("completion", event.completion_tokens),
                    ("cached", event.cached_tokens),
                ):
                    if n:
                        tally.count(TOKENS, (pid, name, kind), n)
                cost = _estimated_cost(event, labels)
                if cost:
                    group = "" if event.account_group is None else str(event.account_group)
                    key_id = "" if event.key_id is None else str(event.key_id)
                    tally.count(COST, (pid, name, group, key_id, label_cap(event.key_name)), cost)
    except Exception:  # metrics must never break a request
        logger.exception("metrics: could not observe usage event %s", event.request_id)
