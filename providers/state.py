"""Circuit breaker state per provider instance, shared through Redis.

closed -> open after ``failure_threshold`` consecutive failures; open for ``recovery_timeout``
seconds; then half-open: exactly one trial request is let through (across every process, by
an atomic Lua script), its success closes the circuit, its failure reopens it. A successful
health probe of an open instance moves it to half-open at once (the next request is the trial).

With ``REDIS_URL`` unset, or while Redis errors, the state lives in per-process dicts (one
process's view only). Redis being down never fails a request: the request path degrades to
the local state and retries Redis after a short pause, so a dead Redis costs one timeout per
pause, not one per request.

The request path uses the async functions (one round trip each, no SQL); Celery, management
commands and the admin use the ``*_sync`` twins.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from providers.redis_conn import async_redis, sync_redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "gw:cb:"
# A trial that never reported back (its process died) is given up after this long, so a
# half-open circuit cannot stay stuck: another trial is allowed.
TRIAL_STALE_SECONDS = 120.0
# After a Redis error, use the local state for this long before trying Redis again.
REDIS_RETRY_SECONDS = 1.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitInfo:
    """One instance's breaker as the health page, route explain and admin show it."""

    state: CircuitState = CircuitState.CLOSED
    failure_count: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
    last_success: float | None = None
    last_failure: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "failure_count": self.failure_count,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
        }


# --- Lua (atomic in Redis) --------------------------------------------------------------
# Hash fields: state, failures, opened_at, retry_at, last_success, last_failure, trial_at.
# trial_at: when the half-open trial was handed out ("" = not handed out yet).

# ``circuit_allow(key, now, stale)`` as a Lua function, so that other scripts (the routing
# runtime's acquire) can take the trial in the same atomic step as their own checks.
ALLOW_FN = """
local function circuit_allow(key, now, stale)
  local h = redis.call('HMGET', key, 'state', 'retry_at', 'trial_at')
  local state = h[1]
  if (not state) or state == 'closed' then return 1 end
  if state == 'open' then
    if now < tonumber(h[2] or '0') then return 0 end
    redis.call('HSET', key, 'state', 'half_open', 'trial_at', tostring(now))
    return 1
  end
  local trial = h[3]
  if (not trial) or trial == '' or now - tonumber(trial) >= stale then
    redis.call('HSET', key, 'trial_at', tostring(now))
    return 1
  end
  return 0
end
"""

ALLOW_LUA = ALLOW_FN + "return circuit_allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"

SUCCESS_FN = """
local function circuit_success(key, now)
  redis.call('HSET', key, 'state', 'closed', 'failures', 0, 'last_success', now,
             'opened_at', '', 'retry_at', '', 'trial_at', '')
  return 1
end
"""

SUCCESS_LUA = SUCCESS_FN + "return circuit_success(KEYS[1], ARGV[1])\n"

# circuit_failure(key, now, threshold, recovery, mode); mode: "request" | "probe_fail" |
# "probe_ok"; ``now`` is the string form (stored as is).
FAILURE_FN = """
local function circuit_failure(key, now_s, threshold, recovery, mode)
  local now = tonumber(now_s)
  local state = redis.call('HGET', key, 'state') or 'closed'
  if mode == 'probe_ok' then
    redis.call('HSET', key, 'last_success', now_s)
    if state == 'open' then
      redis.call('HSET', key, 'state', 'half_open', 'trial_at', '')
    end
    return state
  end
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last_failure', now_s)
  if state == 'half_open' or state == 'open'
     or (state == 'closed' and failures >= tonumber(threshold)) then
    redis.call('HSET', key, 'state', 'open', 'opened_at', now_s,
               'retry_at', tostring(now + tonumber(recovery)), 'trial_at', '')
    return 'open'
  end
  return state
end
"""

# ARGV: now, threshold, recovery, mode
FAILURE_LUA = FAILURE_FN + "return circuit_failure(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n"

RESET_LUA = """
redis.call('DEL', KEYS[1])
return 1
"""


class _Script:
    """A Lua script run with EVALSHA, falling back to EVAL when Redis does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's own id

    async def run(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)

    def run_sync(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)


_ALLOW = _Script(ALLOW_LUA)
_SUCCESS = _Script(SUCCESS_LUA)
_FAILURE = _Script(FAILURE_LUA)
_RESET = _Script(RESET_LUA)


# --- per-process fallback ---------------------------------------------------------------


class _LocalBreakers:
    """The same state machine as the Lua scripts, in this process's memory."""

    def __init__(self) -> None:
        self.data: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def allow(self, pid: int, now: float) -> bool:
        with self.lock:
            h = self.data.get(pid)
            if not h or h.get("state", "closed") == "closed":
                return True
            if h["state"] == "open":
                if now < (h.get("retry_at") or 0):
                    return False
                h["state"] = "half_open"
                h["trial_at"] = now
                return True
            trial = h.get("trial_at")
            if trial is None or now - trial >= TRIAL_STALE_SECONDS:
                h["trial_at"] = now
                return True
            return False

    def success(self, pid: int, now: float) -> None:
        with self.lock:
            h = self.data.setdefault(pid, {})
            h.update(
                state="closed",
                failures=0,
                last_success=now,
                opened_at=None,
                retry_at=None,
                trial_at=None,
            )

    def failure(self, pid: int, now: float, threshold: int, recovery: float, mode: str) -> str:
        with self.lock:
            h = self.data.setdefault(pid, {})
            state = h.get("state", "closed")
            if mode == "probe_ok":
                h["last_success"] = now
                if state == "open":
                    h["state"] = "half_open"
                    h["trial_at"] = None
                return str(state)
            h["failures"] = h.get("failures", 0) + 1
            h["last_failure"] = now
            if state in ("half_open", "open") or h["failures"] >= threshold:
                h.update(state="open", opened_at=now, retry_at=now + recovery, trial_at=None)
                return "open"
            return str(state)

    def info(self, pid: int) -> CircuitInfo:
        with self.lock:
            h = dict(self.data.get(pid) or {})
        return CircuitInfo(
            state=CircuitState(h.get("state", "closed")),
            failure_count=int(h.get("failures", 0)),
            opened_at=h.get("opened_at"),
            retry_at=h.get("retry_at"),
            last_success=h.get("last_success"),
            last_failure=h.get("last_failure"),
        )

    def reset(self, pid: int) -> None:
        with self.lock:
            self.data.pop(pid, None)


_local = _LocalBreakers()
_redis_down_until = 0.0


def _key(provider_id: int) -> str:
    return f"{KEY_PREFIX}{provider_id}"


def redis_usable() -> bool:
    """False while a recent Redis error says: use the local state for now."""
    return time.monotonic() >= _redis_down_until


def redis_failed(exc: BaseException) -> None:
    """Note a Redis error: fall back to local state for ``REDIS_RETRY_SECONDS``."""
    global _redis_down_until
    if redis_usable():
        logger.warning("Redis unavailable for shared routing state, using local state: %s", exc)
    _redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS


def shared_async() -> Any:
    """The asyncio Redis client for shared state, or None (not configured or recently down).

    Routing state has its own client (per event loop, like ``redis_conn.async_redis``) and so
    its own connection pool: the request path's few small commands never queue behind, or
    share a connection's fate with, a usage batch being written.
    """
    if not redis_usable():
        return None
    return async_redis(pool="state")


def shared_sync() -> Any:
    return sync_redis() if redis_usable() else None


def _num(value: Any) -> float | None:
    if value is None or value in (b"", ""):
        return None
    return float(value)


def _info_from_hash(h: list[Any]) -> CircuitInfo:
    state, failures, opened_at, retry_at, last_success, last_failure = h
    return CircuitInfo(
        state=CircuitState(state.decode() if state else "closed"),
        failure_count=int(failures or 0),
        opened_at=_num(opened_at),
        retry_at=_num(retry_at),
        last_success=_num(last_success),
        last_failure=_num(last_failure),
    )


_FIELDS = ("state", "failures", "opened_at", "retry_at", "last_success", "last_failure")


# --- async API (request path) -----------------------------------------------------------


async def circuit_allow(provider_id: int, *, now: float | None = None) -> bool:
    """May a request go to this instance now? Hands out the one half-open trial."""
    now = time.time() if now is None else now
    client = shared_async()
    if client is not None:
        try:
            return bool(
                await _ALLOW.run(client, [_key(provider_id)], [repr(now), TRIAL_STALE_SECONDS])
            )
        except redis.RedisError as exc:
            redis_failed(exc)
    return _local.allow(provider_id, now)


async def circuit_record_success(provider_id: int) -> None:
    now = time.time()
    client = shared_async()
    if client is not None:
        try:
            await _SUCCESS.run(client, [_key(provider_id)], [repr(now)])
            return
        except redis.RedisError as exc:
            redis_failed(exc)
    _local.success(provider_id, now)


async def circuit_record_failure(
    provider_id: int, *, failure_threshold: int, recovery_timeout: float
) -> CircuitState:
    """Count a failure; returns the state after it (``open`` when this failure opened it)."""
    now = time.time()
    client = shared_async()
    if client is not None:
        try:
            state = await _FAILURE.run(
                client,
                [_key(provider_id)],
                [repr(now), failure_threshold, recovery_timeout, "request"],
            )
            return CircuitState(state.decode() if isinstance(state, bytes) else state)
        except redis.RedisError as exc:
            redis_failed(exc)
    return CircuitState(
        _local.failure(provider_id, now, failure_threshold, recovery_timeout, "request")
    )


async def circuit_info_all(provider_ids: list[int] | tuple[int, ...]) -> dict[int, CircuitInfo]:
    """Every listed instance's breaker (one pipelined round trip with Redis)."""
    ids = list(provider_ids)
    client = shared_async()
    if client is not None and ids:
        try:
            async with client.pipeline(transaction=False) as pipe:
                for pid in ids:
                    pipe.hmget(_key(pid), *_FIELDS)
                rows = await pipe.execute()
            return {pid: _info_from_hash(row) for pid, row in zip(ids, rows, strict=True)}
        except redis.RedisError as exc:
            redis_failed(exc)
    return {pid: _local.info(pid) for pid in ids}


# --- sync API (Celery, admin, management) -----------------------------------------------


def circuit_info_all_sync(provider_ids: list[int] | tuple[int, ...]) -> dict[int, CircuitInfo]:
    ids = list(provider_ids)
    client = shared_sync()
    if client is not None and ids:
        try:
            pipe = client.pipeline(transaction=False)
            for pid in ids:
                pipe.hmget(_key(pid), *_FIELDS)
            rows = pipe.execute()
            return {pid: _info_from_hash(row) for pid, row in zip(ids, rows, strict=True)}
        except redis.RedisError as exc:
            redis_failed(exc)
    return {pid: _local.info(pid) for pid in ids}


def circuit_record_probe_sync(
    provider_id: int, *, ok: bool, failure_threshold: int, recovery_timeout: float
) -> CircuitState:
    """Feed a health probe result into the breaker.

    A failed probe counts like a failed request (it can open the circuit, or keep an open one
    open for another ``recovery_timeout``). A successful probe of an *open* instance moves it
    to half-open (the next request is the trial); it does not close it: only real traffic does,
    or a success recorded on a half-open/closed circuit, which simply resets the count.
    """
    now = time.time()
    mode = "probe_ok" if ok else "probe_fail"
    client = shared_sync()
    if client is not None:
        try:
            before = _FAILURE.run_sync(
                client, [_key(provider_id)], [repr(now), failure_threshold, recovery_timeout, mode]
            )
            before = before.decode() if isinstance(before, bytes) else before
            if ok and before == "closed":
                _SUCCESS.run_sync(client, [_key(provider_id)], [repr(now)])
            return _state_after(ok, str(before))
        except redis.RedisError as exc:
            redis_failed(exc)
    before = _local.failure(provider_id, now, failure_threshold, recovery_timeout, mode)
    if ok and before == "closed":
        _local.success(provider_id, now)
    return _state_after(ok, before)


def _state_after(ok: bool, returned: str) -> CircuitState:
    if not ok:
        return CircuitState(returned)
    return CircuitState.HALF_OPEN if returned in ("open", "half_open") else CircuitState.CLOSED


def circuit_reset_sync(provider_id: int) -> None:
    """Forget an instance's breaker (admin "reset circuit", tests)."""
    client = shared_sync()
    if client is not None:
        try:
            _RESET.run_sync(client, [_key(provider_id)], [])
        except redis.RedisError as exc:
            redis_failed(exc)
    _local.reset(provider_id)


def local_state_clear() -> None:
    """Forget all per-process state and clients (tests)."""
    global _redis_down_until
    _local.data.clear()
    _redis_down_until = 0.0
