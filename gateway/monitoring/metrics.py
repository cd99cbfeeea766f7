"""Prometheus metrics: the per-request series, observed from usage events.

Per-request series (requests, errors, upstream latency, time to first token, gateway overhead,
tokens, cost) are updated by :func:`usage_event_observe`, called with each usage event as it is
queued: in memory, no SQL, no I/O. Cost here is an *estimate* from the price in the process's route
table snapshot; the recorder's priced ``UsageRecord`` stays the reference for money.

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
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.core.errors import GatewayError
from gateway.usage.events import UNKNOWN_MODEL, UsageEvent

if TYPE_CHECKING:
    from gateway.routing.table import RouteTable

logger = logging.getLogger(__name__)

__all__ = ["INSTANCE_LABELS", "LABEL_MAX", "REGISTRY", "label_cap", "usage_event_observe"]

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


def _current_table() -> RouteTable | None:
    from gateway.routing.holder import route_tables

    return route_tables.table


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
    become a series, so a client cannot grow ``/metrics`` or the process's memory."""

    def __init__(self, table: RouteTable | None) -> None:
        self.table = table

    def alias(self, alias: str) -> str:
        if not alias:
            return ""
        known = self.table is not None and alias in self.table.aliases
        return label_cap(alias) if known else UNKNOWN_MODEL

    def instance(self, provider_id: int | None) -> tuple[str, str]:
        if provider_id is None:
            return "", ""
        snap = self.table.providers.get(provider_id) if self.table is not None else None
        return str(provider_id), label_cap(snap.name) if snap is not None else UNKNOWN_MODEL


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
        alias = labels.alias(event.model_alias)
        REQUESTS.labels(pid, name, alias, str(event.status_code)).inc()
        if event.status_code >= 400:
            ERRORS.labels(pid, name, alias, error_label(event.error_type)).inc()
        upstream_ms = 0.0
        for attempt in event.attempts:
            upstream_ms += attempt.duration_ms
            UPSTREAM_LATENCY.labels(*labels.instance(attempt.provider_id), alias).observe(
                attempt.duration_ms / 1000
            )
        if event.stream:
            if event.ttft_ms is not None and pid:
                TTFT.labels(pid, name, alias).observe(event.ttft_ms / 1000)
        else:
            OVERHEAD.labels(label_cap(event.endpoint)).observe(
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
                group = "" if event.account_group is None else str(event.account_group)
                key_id = "" if event.key_id is None else str(event.key_id)
                COST.labels(pid, name, group, key_id, label_cap(event.key_name)).inc(cost)
    except Exception:  # metrics must never break a request
        logger.exception("metrics: could not observe usage event %s", event.request_id)
