"""How many health probes each instance has had, by outcome: a counter the scrape can read.

Probes run in Celery workers, not in the processes ``/metrics`` is scraped from, so an
in-process Prometheus counter would never reach the scrape. With Redis, every recorded probe
adds one to a field of one hash (``HINCRBY``: monotonic across workers; Prometheus reads a
flushed Redis as a counter reset). Without Redis the probes run in the gateway's processes
(eager Celery) and the count comes from the recorded :class:`~providers.models.HealthCheck`
rows instead (bounded by ``HEALTH_CHECK_RETENTION_DAYS``: a purge reads as a reset).
"""

from __future__ import annotations

import logging

import redis
from django.db.models import Count

from providers.models import HealthCheck
from providers.redis_conn import sync_redis

logger = logging.getLogger(__name__)

OUTCOMES_KEY = "gw:hc:outcomes"


def health_outcome_count(*, provider_id: int, status: str) -> None:
    """Count one recorded probe of ``provider_id`` with ``status`` (never raises)."""
    client = sync_redis()
    if client is None:
        return  # the HealthCheck row is the count
    try:
        client.hincrby(OUTCOMES_KEY, f"{provider_id}:{status}", 1)
    except (redis.RedisError, OSError):
        logger.warning("health probe outcome of instance %s not counted: Redis", provider_id)
    finally:
        client.close()


def health_outcome_totals() -> dict[tuple[int, str], int]:
    """Probes counted per (instance ID, status): Redis when configured, else the rows."""
    client = sync_redis()
    if client is None:
        rows = HealthCheck.objects.values_list("provider_id", "status").annotate(n=Count("id"))
        return {(pid, status): n for pid, status, n in rows}
    try:
        raw: dict[bytes, bytes] = client.hgetall(OUTCOMES_KEY)  # type: ignore[assignment]
    finally:
        client.close()
    totals: dict[tuple[int, str], int] = {}
    for field, value in raw.items():
        pid, _, status = field.decode().partition(":")
        if pid.isdigit():
            totals[(int(pid), status)] = int(value)
    return totals
