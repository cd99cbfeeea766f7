"""Celery tasks of the providers app: health probes (thin wrappers that take ids).

One beat entry (``providers.health_checks_dispatch``, every ~10 s) fans out a probe task per
enabled instance whose own ``health_check_interval`` has elapsed since its last check, so every
instance keeps its own interval without one beat entry per instance.
"""

from __future__ import annotations

import contextlib
import logging

import redis
from celery import shared_task

from providers.health import health_check_run, health_checks_due, health_checks_purge
from providers.redis_conn import sync_redis

logger = logging.getLogger(__name__)


@shared_task(name="providers.health_check", ignore_result=True)
def health_check_task(*, provider_id: int) -> str | None:
    """Probe one instance, record a HealthCheck, feed its circuit breaker."""
    try:
        result = health_check_run(provider_id=provider_id)
    finally:
        _release(provider_id)
    return result.outcome.status if result is not None else None


# A queued probe not started by then is dropped (a later dispatch queues a fresh one).
PROBE_EXPIRES = 60
_QUEUED_KEY = "gw:hc:queued:"


def _claim(provider_id: int) -> bool:
    """Whether this dispatch may queue a probe of ``provider_id``.

    With Redis, a short-lived marker per instance stops the next dispatches (every ~10 s) from
    queueing the same probe again while the first still waits for a busy worker.
    """
    client = sync_redis()
    if client is None:
        return True
    try:
        return bool(client.set(f"{_QUEUED_KEY}{provider_id}", 1, nx=True, ex=PROBE_EXPIRES))
    except redis.RedisError:
        return True  # a duplicate probe is harmless; a missed one is not


@shared_task(name="providers.health_checks_dispatch", ignore_result=True)
def health_checks_dispatch_task() -> list[int]:
    """Queue a probe of every enabled instance that is due (and not already queued)."""
    queued = []
    for provider_id in health_checks_due():
        if _claim(provider_id):
            health_check_task.apply_async(
                kwargs={"provider_id": provider_id}, expires=PROBE_EXPIRES
            )
            queued.append(provider_id)
    return queued


def _release(provider_id: int) -> None:
    client = sync_redis()
    if client is not None:
        with contextlib.suppress(redis.RedisError):  # else the marker expires by itself
            client.delete(f"{_QUEUED_KEY}{provider_id}")


@shared_task(name="providers.health_checks_purge", ignore_result=True)
def health_checks_purge_task() -> int:
    """Delete checks older than HEALTH_CHECK_RETENTION_DAYS."""
    deleted = health_checks_purge()
    if deleted:
        logger.info("deleted %d old health checks", deleted)
    return deleted
