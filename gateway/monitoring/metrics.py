"""Prometheus metrics: per-request series from usage events, gauges collected at scrape time.

Per-request series (requests, upstream latency, time to first token, gateway overhead, tokens,
cost) are updated by :func:`usage_event_observe`, called with each usage event as it is queued:
in memory, no SQL, no I/O. Cost here is an *estimate* from the price in the process's route
table snapshot; the recorder's priced ``UsageRecord`` stays the reference for money.

Gauges that describe shared state (circuit and health status per instance, usage queue depth,
spool size) are read when ``/metrics`` is scraped, by :class:`StateCollector`.

Multiprocess: with several server workers every process has its own counters. When the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` is set *before* the processes start
(``manage.py serve --workers N`` does it, see README), prometheus-client writes each process's
values to files there and a scrape of any worker aggregates all of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.usage.events import UNKNOWN_MODEL, UsageEvent

if TYPE_CHECKING:
    from gateway.routing.table import RouteTable

logger = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE_LATEST", "metrics_render", "usage_event_observe"]

# Per-process registry of the request series (in multiprocess mode their values also go to
# PROMETHEUS_MULTIPROC_DIR and the scrape reads those instead).
REGISTRY = CollectorRegistry(auto_describe=True)
_INSTANCE = ("provider_id", "provider")
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
    "Duration of each upstream attempt until its response headers (streams) or body.",
    _INSTANCE,
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
TTFT = Histogram(
    "gateway_time_to_first_token_seconds",
    "Streamed requests: time from request start to the first content chunk.",
    _INSTANCE,
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
    (*_INSTANCE, "kind"),
    registry=REGISTRY,
)
COST = Counter(
    "gateway_cost_usd",
    "Estimated cost in USD by instance (route table price; UsageRecord is the reference).",
    _INSTANCE,
    registry=REGISTRY,
)

CIRCUIT_STATES = ("closed", "half_open", "open")
HEALTH_STATES = ("healthy", "degraded", "down", "unknown")


#: Longest label value: names come from the route table (admin-made), capped all the same.
LABEL_MAX = 100


def _current_table() -> RouteTable | None:
    from gateway.routing.holder import route_tables

    return route_tables.table


def _cap(value: str) -> str:
    return value[:LABEL_MAX]


class _Labels:
    """Label values from the route table only: a request's own strings (its ``model``) never
    become a series, so a client cannot grow ``/metrics`` or the process's memory."""

    def __init__(self, table: RouteTable | None) -> None:
        self.table = table

    def alias(self, alias: str) -> str:
        if not alias:
            return ""
        known = self.table is not None and alias in self.table.aliases
        return _cap(alias) if known else UNKNOWN_MODEL

    def instance(self, provider_id: int | None) -> tuple[str, str]:
        if provider_id is None:
            return "", ""
        snap = self.table.providers.get(provider_id) if self.table is not None else None
        return str(provider_id), _cap(snap.name) if snap is not None else UNKNOWN_MODEL


def _estimated_cost(event: UsageEvent, table: RouteTable | None) -> float | None:
    """Cost from the in-memory route table's price of the event's mapping (no SQL)."""
    if event.mapping_id is None or not (event.prompt_tokens or event.completion_tokens):
        return None
    if table is None:
        return None
    for candidate in table.candidates(event.model_alias):
        if candidate.mapping_id == event.mapping_id:
            price = candidate.price
            if price is None:
                return None
            cached = min(max(0, event.cached_tokens), event.prompt_tokens)
            cached_rate = (
                price.cached_input_per_million
                if price.cached_input_per_million is not None
                else price.input_per_million
            )
            total = (
                (event.prompt_tokens - cached) * float(price.input_per_million)
                + cached * float(cached_rate)
                + event.completion_tokens * float(price.output_per_million)
            )
            return total / 1_000_000
    return None


def usage_event_observe(event: UsageEvent) -> None:
    """Count one request's event. Cheap and never raises (it runs on the request path)."""
    try:
        table = _current_table()
        labels = _Labels(table)
        pid, name = labels.instance(event.provider_id)
        REQUESTS.labels(pid, name, labels.alias(event.model_alias), str(event.status_code)).inc()
        upstream_ms = 0.0
        for attempt in event.attempts:
            upstream_ms += attempt.duration_ms
            UPSTREAM_LATENCY.labels(*labels.instance(attempt.provider_id)).observe(
                attempt.duration_ms / 1000
            )
        if event.stream:
            if event.ttft_ms is not None and pid:
                TTFT.labels(pid, name).observe(event.ttft_ms / 1000)
        else:
            OVERHEAD.labels(_cap(event.endpoint)).observe(
                max(0.0, event.latency_ms - upstream_ms) / 1000
            )
        if pid:
            for kind, n in (
                ("prompt", event.prompt_tokens),
                ("completion", event.completion_tokens),
                ("cached", event.cached_tokens),
            ):
                if n:
                    TOKENS.labels(pid, name, kind).inc(n)
            cost = _estimated_cost(event, table)
            if cost:
                COST.labels(pid, name).inc(cost)
    except Exception:  # metrics must never break a request
        logger.exception("metrics: could not observe usage event %s", event.request_id)


# --- scrape-time gauges -------------------------------------------------------------------


def spool_bytes() -> int:
    """Bytes waiting in the local usage spool files (every process's, under STATE_DIR)."""
    from gateway.usage.spool import spool_dir

    directory = spool_dir()
    total = 0
    if directory.is_dir():
        for path in directory.iterdir():
            if path.suffix in (".jsonl", ".tmp"):
                with contextlib.suppress(OSError):  # consumed and removed meanwhile
                    total += path.stat().st_size
    return total


def usage_queue_depth() -> tuple[str, int] | None:
    """(queue, depth): the Redis usage stream's length when Redis is configured."""
    from providers.redis_conn import sync_redis

    client = sync_redis()
    if client is None:
        return None
    stream = getattr(settings, "GATEWAY_USAGE_STREAM", "gw:usage")
    return "redis_stream", int(client.xlen(stream))


class StateCollector(Collector):
    """Circuit and health state per instance, usage queue depth and spool size."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._instances()
        yield from self._usage()

    def _instances(self) -> Iterator[GaugeMetricFamily]:
        from providers.circuit import circuit_info_all_sync
        from providers.health import health_checks_latest
        from providers.models import Provider

        circuit = GaugeMetricFamily(
            "gateway_circuit_state",
            "Circuit breaker state per instance (1 for the current state).",
            labels=[*_INSTANCE, "state"],
        )
        health = GaugeMetricFamily(
            "gateway_provider_health",
            "Last health probe status per instance (1 for the current status).",
            labels=[*_INSTANCE, "status"],
        )
        enabled = GaugeMetricFamily(
            "gateway_provider_enabled", "1 when the instance is enabled.", labels=list(_INSTANCE)
        )
        try:
            providers = list(Provider.objects.values_list("pk", "name", "is_enabled"))
            ids = [p[0] for p in providers]
            circuits = circuit_info_all_sync(ids)
            checks = health_checks_latest(ids)
        except Exception:
            logger.exception("metrics: could not read instance state")
            return
        for pid, name, is_enabled in providers:
            labels = [str(pid), _cap(name)]
            enabled.add_metric(labels, 1 if is_enabled else 0)
            state = str(circuits[pid].state)
            for candidate in CIRCUIT_STATES:
                circuit.add_metric([*labels, candidate], 1 if candidate == state else 0)
            check = checks.get(pid)
            status = check.status if check is not None else "unknown"
            for candidate in HEALTH_STATES:
                health.add_metric([*labels, candidate], 1 if candidate == status else 0)
        yield circuit
        yield health
        yield enabled

    def _usage(self) -> Iterator[GaugeMetricFamily]:
        spool = GaugeMetricFamily(
            "gateway_usage_spool_bytes", "Usage events spooled locally, waiting to be re-sent."
        )
        spool.add_metric([], spool_bytes())
        yield spool
        depth = GaugeMetricFamily(
            "gateway_usage_queue_depth",
            "Usage events queued and not yet recorded (the Redis stream's backlog).",
            labels=["queue"],
        )
        try:
            found = usage_queue_depth()
        except Exception as exc:  # Redis down: report nothing rather than fail the scrape
            logger.warning("metrics: usage queue depth unavailable: %s", type(exc).__name__)
            found = None
        if found is not None:
            depth.add_metric([found[0]], found[1])
        yield depth


def metrics_registry() -> CollectorRegistry:
    """The registry a scrape reads: multiprocess files when configured, else this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StateCollector())
        return registry
    return _LOCAL


_LOCAL = CollectorRegistry()
_LOCAL.register(StateCollector())


class _RequestSeries(Collector):
    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


_LOCAL.register(_RequestSeries())


def metrics_render() -> bytes:
    """The exposition text of everything above."""
    return generate_latest(metrics_registry())
