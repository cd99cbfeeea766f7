"""Redis connections shared by the gateway (config version, state, usage queue).

Redis is optional: every caller must cope with ``None`` (no ``REDIS_URL``) and with
``redis.RedisError`` (Redis down) by falling back to per-process state.

One factory for every topology :mod:`providers.redis_topology` reads: a plain client for one
server, redis-py's Sentinel ``master_for`` client (it asks the Sentinels for the master on
every new connection, so it follows a failover), or redis-py's ``RedisCluster``. Callers use
the same commands in all three; multi-key scripts and transactions keep their keys in one hash
slot (``{...}`` tags in the key names), and the routing view is split per slot in cluster mode
(``gateway.routing.state.redis_backend``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from importlib.resources import files
from typing import Any, cast

import hiredis
import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import RedisClusterException

from providers.redis_pipeline import LeanRedis
from providers.redis_topology import RedisTopology, redis_topology

logger = logging.getLogger(__name__)

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = (
    weakref.WeakKeyDictionary()
)
_sync_client: redis.Redis | None = None
_last_clients: list[Any] = []  # [weak reference to a loop, its clients]

SYNC_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}
# Short: a Redis that hangs must degrade the gateway, not stall it.
ASYNC_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


# The configured topology once read: [] until then. Read per Redis call on the request path,
# where going through Django's settings object and parsing the URL each time cost more than
# the lookup it guards.
_configured: list[RedisTopology | None] = []


def topology() -> RedisTopology | None:
    """The configured topology (None: no Redis)."""
    if not _configured:
        cluster = bool(getattr(settings, "REDIS_CLUSTER", False))
        _configured.append(redis_topology(settings.REDIS_URL, cluster=cluster))
    return _configured[0]


@receiver(setting_changed)
def _reread_topology(*, setting: str, **kwargs: Any) -> None:
    """Settings changed at run time (tests): the next call reads them again."""
    if setting in ("REDIS_URL", "REDIS_CLUSTER"):
        _configured.clear()


class _AsyncCluster(aiocluster.RedisCluster):
    """redis-py's asyncio cluster client, raising ``redis.ConnectionError`` (a RedisError, which
    every caller handles) where redis-py raises ``RedisClusterException`` (no node answers,
    slots not covered)."""

    async def initialize(self, *args: Any, **kwargs: Any) -> _AsyncCluster:
        try:
            return cast(_AsyncCluster, await super().initialize(*args, **kwargs))
        except RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster unavailable: {exc}") from exc


class _SyncCluster(redis.cluster.RedisCluster):
    """redis-py's cluster client, raising ``redis.ConnectionError`` where redis-py raises
    ``RedisClusterException`` (see :class:`_AsyncCluster`)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster unavailable: {exc}") from exc


def _sentinel_kwargs(topo: RedisTopology, timeouts: dict[str, Any]) -> dict[str, Any]:
    return {"db": topo.db, "username": topo.username, "password": topo.password, **timeouts}


def build_sync_client(topo: RedisTopology) -> redis.Redis:
    """A synchronous client for ``topo``; raises ``redis.ConnectionError`` when a cluster
    cannot be reached (redis-py's cluster client connects as it is built)."""
    if topo.mode == "sentinel":
        sentinel = redis.sentinel.Sentinel(list(topo.sentinels), sentinel_kwargs=SYNC_TIMEOUTS)
        return sentinel.master_for(topo.master, **_sentinel_kwargs(topo, SYNC_TIMEOUTS))
    if topo.mode == "cluster":
        try:
            client = _SyncCluster.from_url(topo.url, **SYNC_TIMEOUTS)
        except RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster unavailable: {exc}") from exc
        # The cluster client answers every command the gateway sends (same signatures).
        return cast(redis.Redis, client)
    return redis.Redis.from_url(topo.url, health_check_interval=30, **SYNC_TIMEOUTS)


class _PackedInC:
    """A connection that packs commands with hiredis, as redis-py's synchronous client does
    where hiredis is installed; its asyncio client packs in Python (here ~8 us a command
    against ~1 us, three or more commands per proxied request). The same bytes either way
    (``tests/providers/test_redis_packing.py``)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # Split a command name with spaces in it ("CONFIG GET"), as redis-py does.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            # What hiredis does not take (bytearray; bool and None, which redis-py refuses
            # with its own DataError): redis-py's packing.
            return cast(list[bytes], super().pack_command(*args))  # type: ignore[misc]


_PACKED_CLASSES: dict[type, type] = {}


def _pack_in_c(pool: aioredis.ConnectionPool) -> None:
    """Make ``pool``'s new connections pack with hiredis (the class the pool chose for the
    URL's scheme or the Sentinel, with the packing mixed in)."""
    base = pool.connection_class
    if issubclass(base, _PackedInC):
        return
    packed = _PACKED_CLASSES.get(base)
    if packed is None:
        packed = _PACKED_CLASSES[base] = type(base.__name__, (_PackedInC, base), {})
    pool.connection_class = packed


def build_async_client(topo: RedisTopology) -> aioredis.Redis:
    """An asyncio client for ``topo`` (connects on first use); one server's and a Sentinel
    master's send their pipelines through :mod:`providers.redis_pipeline`."""
    if topo.mode == "cluster":
        # Its nodes build their connections at construction: Python packing stays.
        return cast(aioredis.Redis, _AsyncCluster.from_url(topo.url, **ASYNC_TIMEOUTS))
    if topo.mode == "sentinel":
        sentinel = aiosentinel.Sentinel(list(topo.sentinels), sentinel_kwargs=ASYNC_TIMEOUTS)
        client = sentinel.master_for(
            topo.master, redis_class=LeanRedis, **_sentinel_kwargs(topo, ASYNC_TIMEOUTS)
        )
    else:
        client = LeanRedis.from_url(topo.url, health_check_interval=30, **ASYNC_TIMEOUTS)
    _pack_in_c(client.connection_pool)
    return client


_CLUSTER_TYPES: dict[type, bool] = {}


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (multi-slot work must be split)."""
    # By type, remembered: isinstance against redis-py's classes goes through typing's
    # Protocol machinery, and the answer never changes for a class.
    kind = type(client)
    known = _CLUSTER_TYPES.get(kind)
    if known is None:
        known = _CLUSTER_TYPES[kind] = isinstance(
            client, redis.cluster.RedisCluster | aiocluster.RedisCluster
        )
    return known


def sync_redis() -> redis.Redis | None:
    """The process's synchronous client (admin, Celery, management commands), or None.

    None also while a cluster cannot be reached at all (retried on the next call): callers
    then degrade exactly as without Redis.
    """
    global _sync_client
    if _sync_client is not None:
        return _sync_client
    topo = topology()
    if topo is None:
        return None
    try:
        _sync_client = build_sync_client(topo)
    except redis.RedisError as exc:
        logger.warning("Redis (%s) unavailable: %s", topo.mode, type(exc).__name__)
        return None
    return _sync_client


def async_redis(pool: str = "default") -> aioredis.Redis | None:
    """The event loop's asyncio client (the request path), or None without REDIS_URL.

    One client per loop: an asyncio connection pool is bound to the loop that created it.
    """
    topo = topology()
    if topo is None:
        return None
    loop = asyncio.get_running_loop()
    # The last loop's clients at hand: a WeakKeyDictionary lookup makes a weak reference per
    # call, and a server process has one loop.
    clients = _last_clients[1] if _last_clients and _last_clients[0]() is loop else None
    if clients is None:
        clients = _async_clients.setdefault(loop, {})
        _last_clients[:] = [weakref.ref(loop), clients]
    client = clients.get(pool)
    if client is None:
        client = clients[pool] = build_async_client(topo)
    return client


def reset_clients() -> None:
    """Drop cached clients (tests that switch REDIS_URL)."""
    global _sync_client
    _sync_client = None
    _async_clients.clear()
    _last_clients.clear()


def redis_ready() -> tuple[bool, str]:
    """(usable, "ok" or why not) for ``/health/ready``: never a URL or a password.

    Sentinel: the Sentinels name a master and it answers. Cluster: every slot is served
    (``cluster_state:ok``, 16384 slots assigned) and every master answers.
    """
    topo = topology()
    if topo is None:
        return True, "ok"
    try:
        client = sync_redis() or build_sync_client(topo)
        if topo.mode == "cluster":
            return _cluster_ready(client)
        client.ping()
    except redis.sentinel.MasterNotFoundError:
        return False, f"error: no reachable master for Sentinel service {topo.master!r}"
    except (redis.RedisError, OSError) as exc:
        return False, f"error: {type(exc).__name__}: {_first_line(exc)}"
    return True, "ok"


def _cluster_ready(client: redis.Redis) -> tuple[bool, str]:
    # Every master is asked for its own view (a node-level command: redis-py's slot routing
    # is not usable while slots are missing), which also proves it answers.
    cluster = cast(redis.cluster.RedisCluster, client)
    slots = redis.cluster.REDIS_CLUSTER_HASH_SLOTS
    for node in cluster.get_primaries():
        connection = node.redis_connection
        if connection is None:
            return False, f"error: no connection to cluster node {node.name}"
        info = connection.cluster("INFO")
        state, assigned = str(info.get("cluster_state")), int(info.get("cluster_slots_assigned", 0))
        if state != "ok" or assigned < slots:
            return False, f"error: cluster_state {state}, {assigned}/{slots} slots assigned"
    return True, "ok"


def _first_line(exc: BaseException) -> str:
    # redis-py's messages name hosts and ports at most, never the password.
    return (str(exc).splitlines() or [""])[0][:200]


def lua_source(package: str, *names: str) -> str:
    """The Lua files ``names`` of ``package``'s ``lua`` directory, concatenated in order.

    Scripts share functions by concatenation: a library file (e.g. ``circuit.lua``) first,
    then the script that calls its functions.
    """
    lua = files(package).joinpath("lua")
    return "\n".join(lua.joinpath(name).read_text(encoding="utf-8") for name in names)
