"""Is the usage queue durable? Usage events wait in Redis between a request and its record;
a Redis without AOF (``appendonly no``) loses every event not yet recorded when it crashes.

Warned about at startup (a system check, shown by ``manage.py check`` and before ``serve``
starts) and in ``/health/ready`` (a warning field, never a failure). Deliberate setups
silence it with ``GATEWAY_REDIS_AOF_WARNING=0``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.conf import settings
from django.core import checks

from providers.redis_conn import sync_redis

logger = logging.getLogger(__name__)

REDIS_QUEUE = "gateway.usage.queues.RedisStreamUsageQueue"
AOF_WARNING = (
    "The Redis holding the usage queue has appendonly no: events not yet recorded are lost "
    "if it crashes. Turn on AOF (appendonly yes) or set GATEWAY_REDIS_AOF_WARNING=0."
)


def usage_queue_in_redis() -> bool:
    path = settings.GATEWAY_USAGE_QUEUE
    return bool(settings.REDIS_URL) and (path == REDIS_QUEUE or (not path))


def redis_aof_warning() -> str | None:
    """The warning text when the usage queue's Redis has no AOF; ``None`` when it has, when
    the queue is not in Redis, when silenced, or when Redis cannot be asked (readiness and
    the logs report an unreachable Redis on their own)."""
    if not settings.GATEWAY_REDIS_AOF_WARNING or not usage_queue_in_redis():
        return None
    client = sync_redis()
    if client is None:
        return None
    try:
        # INFO rather than CONFIG GET: managed Redis services often disable CONFIG.
        info: dict[str, Any] = client.info("persistence")
    except (redis.RedisError, OSError):
        return None
    except AttributeError:
        # redis-py's cluster client, asked while its slot map is being rebuilt, fails this way.
        return None
    finally:
        client.close()
    if str(info.get("aof_enabled", "0")) == "1":
        return None
    return AOF_WARNING


def check_redis_aof(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """System check ``monitoring.W001``: the usage queue's Redis has no AOF."""
    warning = redis_aof_warning()
    if warning is None:
        return []
    return [checks.Warning(warning, id="monitoring.W001")]
