"""What ``/metrics`` renders: the request series plus values read at scrape time.

Read at scrape time, never on the request path (:class:`StateCollector`): circuit and health
state per instance, health probe outcomes (counted where the Celery workers record them:
:mod:`providers.health_counts`), usage queue depth (this process's buffer, the Redis stream's
backlog and its pending entries), spool size, and budget use per budgeted virtual key (what
the budget task last published, at most :data:`BUDGET_SERIES_MAX` keys).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.monitoring.metrics import INSTANCE_LABELS, REGISTRY, label_cap, metrics_publish

logger = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE_LATEST", "metrics_render"]

CIRCUIT_STATES = ("closed", "half_open", "open")
HEALTH_STATES = ("healthy", "degraded", "down", "unknown")
#: Budget series kept per scrape: the keys closest to (or furthest past) their budget.
BUDGET_SERIES_MAX = 200

Metric = GaugeMetricFamily | CounterMetricFamily


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


def usage_queue_depth() -> list[tuple[str, int]]:
    """(queue, depth) pairs: this process's buffer, and with Redis the usage stream's length
    (recorded entries are deleted, so its length is the backlog) and its pending entries
    (read by a drain worker, not yet acknowledged)."""
    from gateway.usage.events import get_usage_queue
    from providers.redis_conn import sync_redis

    queue: Any = get_usage_queue()
    found = [("process_buffer", len(queue) if hasattr(queue, "__len__") else 0)]
    client = sync_redis()
    if client is None:
        return found
    stream, group = settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP
    try:
        found.append(("redis_stream", int(client.xlen(stream))))
        try:
            pending: Any = client.xpending(stream, group)
            found.append(("redis_pending", int(pending["pending"])))
        except redis.ResponseError:  # no group yet (no drain has run): nothing is pending
            found.append(("redis_pending", 0))
    finally:
        client.close()
    return found


class StateCollector(Collector):
    """Instance state, health probe outcomes, usage queue depth, spool size, budget use."""

    def collect(self) -> Iterator[Metric]:
        yield from self._instances()
        yield from self._usage()
        yield from self._budgets()

    def _instances(self) -> Iterator[Metric]:
        from providers.circuit import circuit_info_all_sync
        from providers.health import health_checks_latest
        from providers.health_counts import health_outcome_totals
        from providers.models import Provider

        circuit = GaugeMetricFamily(
            "gateway_circuit_state",
            "Circuit breaker state per instance (1 for the current state).",
            labels=[*INSTANCE_LABELS, "state"],
        )
        health = GaugeMetricFamily(
            "gateway_provider_health",
            "Last health probe status per instance (1 for the current status).",
            labels=[*INSTANCE_LABELS, "status"],
        )
        enabled = GaugeMetricFamily(
            "gateway_provider_enabled",
            "1 when the instance is enabled.",
            labels=list(INSTANCE_LABELS),
        )
        probes = CounterMetricFamily(
            "gateway_health_probes",
            "Health probes recorded per instance and outcome (healthy, degraded, down).",
            labels=[*INSTANCE_LABELS, "outcome"],
        )
        try:
            providers = list(Provider.objects.values_list("pk", "name", "is_enabled"))
            ids = [p[0] for p in providers]
            circuits = circuit_info_all_sync(ids)
            checks = health_checks_latest(ids)
        except Exception:
            logger.exception("metrics: could not read instance state")
            return
        try:
            outcomes = health_outcome_totals()
        except Exception as exc:  # Redis down: the gauges above still describe the instances
            logger.warning("metrics: health probe outcomes unavailable: %s", type(exc).__name__)
            outcomes = {}
        for pid, name, is_enabled in providers:
            labels = [str(pid), label_cap(name)]
            enabled.add_metric(labels, 1 if is_enabled else 0)
            state = str(circuits[pid].state)
            for candidate in CIRCUIT_STATES:
                circuit.add_metric([*labels, candidate], 1 if candidate == state else 0)
            check = checks.get(pid)
            status = check.status if check is not None else "unknown"
            for candidate in HEALTH_STATES:
                health.add_metric([*labels, candidate], 1 if candidate == status else 0)
            for outcome in HEALTH_STATES[:3]:
                probes.add_metric([*labels, outcome], outcomes.get((pid, outcome), 0))
        yield circuit
        yield health
        yield enabled
        yield probes

    def _usage(self) -> Iterator[Metric]:
        spool = GaugeMetricFamily(
            "gateway_usage_spool_bytes", "Usage events spooled locally, waiting to be re-sent."
        )
        spool.add_metric([], spool_bytes())
        yield spool
        depth = GaugeMetricFamily(
            "gateway_usage_queue_depth",
            "Usage events not yet recorded: process_buffer (this process, not yet handed on), "
            "redis_stream (the stream's backlog), redis_pending (read, not yet acknowledged).",
            labels=["queue"],
        )
        try:
            found = usage_queue_depth()
        except Exception as exc:  # Redis down: report nothing rather than fail the scrape
            logger.warning("metrics: usage queue depth unavailable: %s", type(exc).__name__)
            found = []
        for queue, n in found:
            depth.add_metric([queue], n)
        yield depth

    def _budgets(self) -> Iterator[Metric]:
        from gateway.usage.budgets import budget_use_latest

        labels = ["virtual_key_id", "virtual_key", "period"]
        spend = GaugeMetricFamily(
            "gateway_budget_spend_usd",
            "Spend of a budgeted virtual key in its current period (as the budget task last "
            "computed it).",
            labels=labels,
        )
        amount = GaugeMetricFamily(
            "gateway_budget_amount_usd", "Budget of the virtual key for its period.", labels=labels
        )
        ratio = GaugeMetricFamily(
            "gateway_budget_used_ratio",
            "Spend / budget of the virtual key (1 = exhausted).",
            labels=labels,
        )
        try:
            uses = budget_use_latest(limit=BUDGET_SERIES_MAX)
        except Exception as exc:
            logger.warning("metrics: budget use unavailable: %s", type(exc).__name__)
            uses = []
        for use in uses:
            values = [str(use.virtual_key_id), label_cap(use.name), use.period]
            spend.add_metric(values, float(use.spend))
            amount.add_metric(values, float(use.amount))
            ratio.add_metric(values, float(use.spend / use.amount) if use.amount else 0.0)
        yield spend
        yield amount
        yield ratio


def metrics_registry() -> CollectorRegistry:
    """The registry a scrape reads: multiprocess files when configured, else this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StateCollector())
        return registry
    return _LOCAL


class _RequestSeries(Collector):
    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


_LOCAL = CollectorRegistry()
_LOCAL.register(StateCollector())
_LOCAL.register(_RequestSeries())


def metrics_render() -> bytes:
    """The exposition text of everything above (this process's tally published first)."""
    metrics_publish()
    return generate_latest(metrics_registry())
