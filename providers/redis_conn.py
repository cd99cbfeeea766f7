"""Redis connections shared by the gateway (config version, state, usage queue).

Redis is optional: every caller must cope with ``None`` (no ``REDIS_URL``) and with
``redis.RedisError`` (Redis down) by falling back to per-process state.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache
from importlib.resources import files

import redis
import redis.asyncio as aioredis
from django.conf import settings

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)


@lru_cache(maxsize=1)
def sync_redis() -> redis.Redis | None:
    """The process's synchronous client (admin, Celery, management commands), or None."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30
    )


def async_redis(pool: str = "default") -> aioredis.Redis | None:
    """The event loop's asyncio client (the request path), or None without REDIS_URL.

    One client per loop: an asyncio connection pool is bound to the loop that created it.
    Short timeouts: a Redis that hangs must degrade the gateway, not stall it.
    """
    if not settings.REDIS_URL:
        return None
    clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(pool)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            health_check_interval=30,
        )
        clients[pool] = client
    return client


def reset_clients() -> None:
    """Drop cached clients (tests that switch REDIS_URL)."""
    sync_redis.cache_clear()
    _async_clients.clear()


def lua_source(package: str, *names: str) -> str:
    """The Lua files ``names`` of ``package``'s ``lua`` directory, concatenated in order.

    Scripts share functions by concatenation: a library file (e.g. ``circuit.lua``) first,
    then the script that calls its functions.
    """
    lua = files(package).joinpath("lua")
    return "\n".join(lua.joinpath(name).read_text(encoding="utf-8") for name in names)
