"""The breaker in Redis, shared by every process, and the switch to the in-process twin.

Redis being down never fails a request or a probe: callers degrade to the local state
(:data:`providers.circuit.local.local_breakers`) and retry Redis after a short pause, so a
dead Redis costs one timeout per pause, not one per request. The routing state
(``gateway.routing.state``) follows the same switch.
"""

from __future__ import annotations

import logging
import time

import redis
import redis.asyncio as aioredis

from providers.circuit.local import local_breakers
from providers.circuit.model import (
    INFO_FIELDS,
    CircuitInfo,
    CircuitState,
    circuit_key,
    info_from_hash,
)
from providers.redis_conn import async_redis, lua_source, sync_redis

logger = logging.getLogger(__name__)

# After a Redis error, use the local state for this long before trying Redis again.
REDIS_RETRY_SECONDS = 1.0
# The breaker's Lua functions, for scripts that take a breaker step among other checks.
CIRCUIT_LUA = lua_source("providers.circuit", "circuit.lua")
PROBE_LUA = CIRCUIT_LUA + "\n" + lua_source("providers.circuit", "probe.lua")

_redis_down_until = 0.0
# The probe script registered on the current sync client (replaced when the client is).
_probe: redis.commands.core.Script | None = None


def redis_usable() -> bool:
    """False while a recent Redis error says: use the local state for now."""
    return time.monotonic() >= _redis_down_until


def redis_failed(exc: BaseException) -> None:
    """Note a Redis error: fall back to local state for ``REDIS_RETRY_SECONDS``."""
    global _redis_down_until
    if redis_usable():
        logger.warning("Redis unavailable for shared routing state, using local state: %s", exc)
    _redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS


def shared_async() -> aioredis.Redis | None:
    """The asyncio Redis client for shared state, or None (not configured or recently down).

    Routing state has its own client (per event loop, like ``redis_conn.async_redis``) and so
    its own connection pool: the request path's few small commands never queue behind, or
    share a connection's fate with, a usage batch being written.
    """
    if not redis_usable():
        return None
    return async_redis(pool="state")


def shared_sync() -> redis.Redis | None:
    """The synchronous Redis client for shared state, or None (not configured or recently down)."""
    return sync_redis() if redis_usable() else None


def circuit_info_all_sync(provider_ids: list[int] | tuple[int, ...]) -> dict[int, CircuitInfo]:
    """Every listed instance's breaker (one pipelined round trip with Redis)."""
    ids = list(provider_ids)
    client = shared_sync()
    if client is not None and ids:
        try:
            pipe = client.pipeline(transaction=False)
            for pid in ids:
                pipe.hmget(circuit_key(pid), *INFO_FIELDS)
            rows = pipe.execute()
            return {pid: info_from_hash(row) for pid, row in zip(ids, rows, strict=True)}
        except redis.RedisError as exc:
            redis_failed(exc)
    return {pid: local_breakers.info(pid) for pid in ids}


def circuit_record_probe_sync(
    provider_id: int, *, ok: bool, failure_threshold: int, recovery_timeout: float
) -> CircuitState:
    """Feed a health probe result into the breaker; returns the state after it.

    A failed probe counts like a failed request (it can open the circuit, or keep an open one
    open for another ``recovery_timeout``). A successful probe of an *open* instance moves it
    to half-open (the next request is the trial); it does not close it: only real traffic does,
    or a success recorded on a closed circuit, which simply resets the count.
    """
    global _probe
    now = time.time()
    client = shared_sync()
    if client is not None:
        try:
            probe = _probe
            if probe is None or probe.registered_client is not client:
                probe = _probe = client.register_script(PROBE_LUA)
            after = probe(
                [circuit_key(provider_id)],
                [repr(now), "1" if ok else "0", failure_threshold, recovery_timeout],
            )
            return CircuitState(after.decode())
        except redis.RedisError as exc:
            redis_failed(exc)
    if ok:
        return local_breakers.probe_success(provider_id, now)
    return local_breakers.failure(provider_id, now, failure_threshold, recovery_timeout)


def circuit_reset_sync(provider_id: int) -> None:
    """Forget an instance's breaker (closed, no failures), in Redis and in this process."""
    client = shared_sync()
    if client is not None:
        try:
            client.delete(circuit_key(provider_id))
        except redis.RedisError as exc:
            redis_failed(exc)
    local_breakers.reset(provider_id)


def local_state_clear() -> None:
    """Forget every per-process breaker and a noted Redis outage (tests)."""
    global _redis_down_until
    local_breakers.clear()
    _redis_down_until = 0.0
