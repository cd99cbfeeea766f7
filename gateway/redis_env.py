"""Redis settings read from the environment: the topology, and what Celery and Django's
cache make of it (``gateway/settings.py`` unpacks :func:`redis_settings`).

* Celery/kombu speaks Sentinel (``sentinel://`` broker URLs plus the ``master_name``
  transport option), derived here from ``REDIS_URL``; it has no Redis Cluster transport, so
  with ``REDIS_CLUSTER=1`` the broker must be named explicitly (``CELERY_BROKER_URL``: a
  plain Redis, or RabbitMQ) or startup stops.
* Django's cache (only django-axes' lockout counters use it, with ``AXES_STORE=cache``):
  Django's ``RedisCache`` takes one server's URL, so it is used for a plain ``REDIS_URL`` only;
  with Sentinel or Cluster the cache is per process (locmem) and ``AXES_STORE=cache`` is
  refused (``AXES_STORE=database``, the default, shares lockouts through the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from gateway.env import envbool, envlist, envstr
from providers.redis_topology import RedisTopology, redis_topology, sentinel_url

_UNSET = "\0unset"


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    cluster: bool
    topology: RedisTopology | None
    broker_url: str
    broker_options: dict[str, Any]
    axes_cache: dict[str, Any]


def _broker(topo: RedisTopology | None, url: str) -> tuple[str, dict[str, Any]]:
    explicit = envstr("CELERY_BROKER_URL", _UNSET)
    if explicit != _UNSET:  # set, even to "" (no broker: tasks run eagerly)
        return explicit, {}
    if topo is None:
        return "", {}
    if topo.mode == "cluster":
        raise ImproperlyConfigured(
            "REDIS_CLUSTER=1: Celery cannot use a Redis Cluster as its broker; set "
            "CELERY_BROKER_URL (a plain redis:// server or amqp://)"
        )
    if topo.mode == "sentinel":
        auth = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[0]
        auth = f"{auth}@" if auth else ""
        nodes = ";".join(f"sentinel://{auth}{h}:{p}/{topo.db}" for h, p in topo.sentinels)
        return nodes, {"master_name": topo.master}
    return url, {}


def _axes_cache(topo: RedisTopology | None, url: str) -> dict[str, Any]:
    if topo is not None and topo.mode == "single":
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if topo is not None and envstr("AXES_STORE", "database") == "cache":
        raise ImproperlyConfigured(
            f"AXES_STORE=cache needs a plain redis:// REDIS_URL (not {topo.mode}); "
            "use AXES_STORE=database"
        )
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "axes"}


def redis_settings() -> RedisSettings:
    """Read REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_CLUSTER and
    CELERY_BROKER_URL; stop startup with the setting's name on a value that cannot work."""
    url = envstr("REDIS_URL", "")
    sentinels = envlist("REDIS_SENTINELS", [])
    master = envstr("REDIS_SENTINEL_MASTER", "")
    if sentinels:
        if url:
            raise ImproperlyConfigured("set REDIS_URL or REDIS_SENTINELS, not both")
        url = sentinel_url(sentinels, master)
    elif master:
        raise ImproperlyConfigured("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is empty")
    cluster = envbool("REDIS_CLUSTER", False)
    topo = redis_topology(url, cluster=cluster)
    broker_url, broker_options = _broker(topo, url)
    return RedisSettings(
        url=url,
        cluster=cluster,
        topology=topo,
        broker_url=broker_url,
        broker_options=broker_options,
        axes_cache=_axes_cache(topo, url),
    )
