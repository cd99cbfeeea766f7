"""Shared routing state on the request path: limits, in-flight counts, latency, cooling.

Per request the pipeline makes, with Redis:

1. one pipelined round trip (:func:`route_view_read`) that consumes the virtual key's rate
   limit (atomic Lua) and reads, for every candidate instance, its circuit, in-flight count,
   latency average, rate-limit windows and cooling account groups, plus the alias's
   round-robin counter (INCR);
2. per attempt, one Lua call (:func:`instance_acquire`) that re-checks the instance's limits,
   takes the circuit (the half-open trial is handed out here, atomically across processes),
   counts the request against the instance's windows and increments its in-flight count;
3. one pipelined round trip when the attempt ends (:meth:`Lease.release`): in-flight down,
   latency average, circuit success/failure, token correction.

Without Redis, or while it errors, the same logic runs on per-process dicts.

Rate limits are sliding windows approximated by two fixed windows (the previous one weighted
by how much of it still overlaps): O(1) memory and one GET per counter, accurate to a few
percent, the approach Cloudflare and the ``limits`` library's "sliding window counter" use.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings

from providers import state
from providers.state import ALLOW_FN, CircuitState, _Script

EWMA_ALPHA = 0.3

_RL_FN = """
local function rl_used(cur, prev, frac)
  local c = tonumber(redis.call('GET', cur) or '0')
  local p = tonumber(redis.call('GET', prev) or '0')
  return p * (1 - frac) + c, c, p
end
local function rl_over(used, limit, cost)
  if limit < 0 then return false end
  if used <= 0 then return false end
  return used + cost > limit
end
"""

# KEYS: r_cur r_prev t_cur t_prev ; ARGV: rpm tpm cost frac ttl
KEY_LIMIT_LUA = (
    _RL_FN
    + """
local frac = tonumber(ARGV[4])
local ru, rc, rp = rl_used(KEYS[1], KEYS[2], frac)
if rl_over(ru, tonumber(ARGV[1]), 1) then return {0, 1, rc, rp} end
local tu, tc, tp = rl_used(KEYS[3], KEYS[4], frac)
if rl_over(tu, tonumber(ARGV[2]), tonumber(ARGV[3])) then return {0, 2, tc, tp} end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('INCRBY', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return {1, 0, 0, 0}
"""
)

# KEYS: cb inst r_cur r_prev t_cur t_prev ; ARGV: now stale rpm tpm cost frac ttl force
ACQUIRE_LUA = (
    _RL_FN
    + ALLOW_FN
    + """
local frac = tonumber(ARGV[6])
local ru = rl_used(KEYS[3], KEYS[4], frac)
if rl_over(ru, tonumber(ARGV[3]), 1) then return 2 end
local tu = rl_used(KEYS[5], KEYS[6], frac)
if rl_over(tu, tonumber(ARGV[4]), tonumber(ARGV[5])) then return 3 end
if ARGV[8] ~= '1' and circuit_allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])) == 0 then
  return 0
end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('INCRBY', KEYS[5], ARGV[5])
redis.call('EXPIRE', KEYS[5], ARGV[7])
redis.call('HINCRBY', KEYS[2], 'inflight', 1)
redis.call('EXPIRE', KEYS[2], 3600)
return 1
"""
)

# KEYS: inst ; ARGV: latency_ms (or ""), alpha
RELEASE_LUA = """
local n = redis.call('HINCRBY', KEYS[1], 'inflight', -1)
if n < 0 then redis.call('HSET', KEYS[1], 'inflight', 0) end
if ARGV[1] ~= '' then
  local x = tonumber(ARGV[1])
  local e = tonumber(redis.call('HGET', KEYS[1], 'ewma') or '')
  if e then x = tonumber(ARGV[2]) * x + (1 - tonumber(ARGV[2])) * e end
  redis.call('HSET', KEYS[1], 'ewma', tostring(x))
end
redis.call('EXPIRE', KEYS[1], 3600)
return 1
"""

_KEY_LIMIT = _Script(KEY_LIMIT_LUA)
_ACQUIRE = _Script(ACQUIRE_LUA)

ACQUIRE_OK, ACQUIRE_CIRCUIT, ACQUIRE_RPM, ACQUIRE_TPM = 1, 0, 2, 3
ACQUIRE_REASONS = {
    ACQUIRE_CIRCUIT: "circuit open",
    ACQUIRE_RPM: "instance at its requests-per-minute limit",
    ACQUIRE_TPM: "instance at its tokens-per-minute limit",
}


def _window() -> float:
    return float(settings.GATEWAY_RATE_LIMIT_WINDOW)


def _win(now: float) -> tuple[int, float]:
    w = _window()
    return int(now // w), (now % w) / w


def _ttl() -> int:
    return int(_window() * 2) + 2


def _rl_keys(scope: str, ident: int, now: float) -> list[str]:
    idx, _ = _win(now)
    base = f"gw:rl:{scope}:{ident}"
    return [f"{base}:r:{idx}", f"{base}:r:{idx - 1}", f"{base}:t:{idx}", f"{base}:t:{idx - 1}"]


def _inst_key(pid: int) -> str:
    return f"gw:inst:{pid}"


def _cool_key(pid: int, group: int) -> str:
    return f"gw:cool:{pid}:{group}"


def retry_after_for(limit: float, cost: float, cur: float, prev: float, now: float) -> int:
    """Seconds until a sliding window with counts ``cur``/``prev`` admits ``cost`` more."""
    w = _window()
    _, frac = _win(now)
    if cur + cost > limit:
        # Not before the next window; then the current count decays as the old one did.
        need = 1 - (limit - cost) / cur if cur > 0 else 0.0
        wait = (1 - frac) * w + max(0.0, need) * w
    else:
        need = 1 - (limit - cur - cost) / prev if prev > 0 else 0.0
        wait = max(0.0, need - frac) * w
    return max(1, math.ceil(min(wait, 2 * w)))


# --- per-process fallback ---------------------------------------------------------------


class _Local:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.inflight: dict[int, int] = {}
        self.ewma: dict[int, float] = {}
        self.cooling: dict[tuple[int, int], float] = {}
        self.rr: dict[str, int] = {}
        self.lock = threading.Lock()

    def used(self, keys: list[str], frac: float) -> tuple[float, float, float, float, float, float]:
        rc, rp, tc, tp = (self.counts.get(k, 0.0) for k in keys)
        return rp * (1 - frac) + rc, rc, rp, tp * (1 - frac) + tc, tc, tp

    def add(self, key: str, n: float) -> None:
        self.counts[key] = self.counts.get(key, 0.0) + n
        if len(self.counts) > 10_000:
            self.prune()

    def prune(self) -> None:
        idx, _ = _win(time.time())
        for k in [k for k in self.counts if int(k.rsplit(":", 1)[1]) < idx - 1]:
            del self.counts[k]


_local = _Local()


def _over(used: float, limit: int | None, cost: float) -> bool:
    return limit is not None and used > 0 and used + cost > limit


def _lim(limit: int | None) -> int:
    return -1 if limit is None else int(limit)


# --- what one request sees --------------------------------------------------------------


@dataclass(slots=True)
class InstanceView:
    """One candidate instance's shared state at the start of a request."""

    circuit: CircuitState = CircuitState.CLOSED
    failure_count: int = 0
    retry_at: float | None = None
    inflight: int = 0
    latency_ms: float | None = None
    rpm_used: float = 0.0
    tpm_used: float = 0.0
    cooling: dict[int, float] = field(default_factory=dict)  # account group -> seconds left


@dataclass(slots=True)
class RouteView:
    instances: dict[int, InstanceView]
    rr: int = 0


class KeyRateLimited(Exception):
    def __init__(self, which: str, limit: int, retry_after: int) -> None:
        super().__init__(which)
        self.which = which
        self.limit = limit
        self.retry_after = retry_after


def _key_check_local(
    vkey_id: int, rpm: int | None, tpm: int | None, cost: int, now: float, consume: bool
) -> None:
    keys = _rl_keys("k", vkey_id, now)
    _, frac = _win(now)
    with _local.lock:
        ru, rc, rp, tu, tc, tp = _local.used(keys, frac)
        if _over(ru, rpm, 1):
            assert rpm is not None
            raise KeyRateLimited("requests", rpm, retry_after_for(rpm, 1, rc, rp, now))
        if _over(tu, tpm, cost):
            assert tpm is not None
            raise KeyRateLimited("tokens", tpm, retry_after_for(tpm, cost, tc, tp, now))
        if consume:
            _local.add(keys[0], 1)
            _local.add(keys[2], cost)


async def route_view_read(
    *,
    alias: str,
    provider_groups: dict[int, Sequence[int]],
    round_robin: bool,
    vkey_id: int | None = None,
    vkey_rpm: int | None = None,
    vkey_tpm: int | None = None,
    est_tokens: int = 0,
    consume_key: bool = True,
) -> RouteView:
    """Read the candidates' shared state; count the request against the key's limits.

    Raises :class:`KeyRateLimited` when the key is over a limit (nothing is counted then).
    ``provider_groups``: instance id -> the account groups of its keys.
    """
    now = time.time()
    key_limited = vkey_id is not None and (vkey_rpm is not None or vkey_tpm is not None)
    client = state.shared_async()
    if client is not None:
        try:
            return await _read_redis(
                client,
                now,
                alias,
                provider_groups,
                round_robin,
                key_limited,
                vkey_id,
                vkey_rpm,
                vkey_tpm,
                est_tokens,
                consume_key,
            )
        except redis.RedisError as exc:
            state.redis_failed(exc)
    if key_limited:
        assert vkey_id is not None
        _key_check_local(vkey_id, vkey_rpm, vkey_tpm, est_tokens, now, consume_key)
    return _read_local(now, alias, provider_groups, round_robin, consume_key)


async def _read_redis(
    client: Any,
    now: float,
    alias: str,
    provider_groups: dict[int, Sequence[int]],
    round_robin: bool,
    key_limited: bool,
    vkey_id: int | None,
    vkey_rpm: int | None,
    vkey_tpm: int | None,
    est_tokens: int,
    consume_key: bool,
) -> RouteView:
    _, frac = _win(now)
    async with client.pipeline(transaction=False) as pipe:
        if key_limited:
            assert vkey_id is not None
            keys = _rl_keys("k", vkey_id, now)
            if consume_key:
                pipe.eval(
                    KEY_LIMIT_LUA,
                    4,
                    *keys,
                    _lim(vkey_rpm),
                    _lim(vkey_tpm),
                    est_tokens,
                    repr(frac),
                    _ttl(),
                )
            else:
                pipe.mget(keys)
        if round_robin:
            if consume_key:
                pipe.incr(f"gw:rr:{alias}")
            else:  # explain: the next turn, without taking it
                pipe.get(f"gw:rr:{alias}")
        for pid, groups in provider_groups.items():
            pipe.hmget(state._key(pid), "state", "failures", "retry_at")
            pipe.hmget(_inst_key(pid), "inflight", "ewma")
            pipe.mget(_rl_keys("p", pid, now))
            for g in groups:
                pipe.pttl(_cool_key(pid, g))
        results = list(await pipe.execute())
    if key_limited:
        first = results.pop(0)
        if consume_key:
            ok, which, cur, prev = (int(x) for x in first)
            if not ok:
                limit = int(vkey_rpm if which == 1 else vkey_tpm)  # type: ignore[arg-type]
                cost = 1 if which == 1 else est_tokens
                raise KeyRateLimited(
                    "requests" if which == 1 else "tokens",
                    limit,
                    retry_after_for(limit, cost, cur, prev, now),
                )
    rr = int(results.pop(0) or 0) + (0 if consume_key else 1) if round_robin else 0
    view = RouteView(instances={}, rr=rr)
    for pid, groups in provider_groups.items():
        cb, inst, windows = results.pop(0), results.pop(0), results.pop(0)
        rc, rp, tc, tp = (float(x or 0) for x in windows)
        cooling: dict[int, float] = {}
        for g in groups:
            ttl = int(results.pop(0))
            if ttl > 0:
                cooling[g] = ttl / 1000
        view.instances[pid] = InstanceView(
            circuit=CircuitState(cb[0].decode() if cb[0] else "closed"),
            failure_count=int(cb[1] or 0),
            retry_at=float(cb[2]) if cb[2] else None,
            inflight=max(0, int(inst[0] or 0)),
            latency_ms=float(inst[1]) if inst[1] else None,
            rpm_used=rp * (1 - frac) + rc,
            tpm_used=tp * (1 - frac) + tc,
            cooling=cooling,
        )
    return view


def _read_local(
    now: float,
    alias: str,
    provider_groups: dict[int, Sequence[int]],
    round_robin: bool,
    consume: bool = True,
) -> RouteView:
    _, frac = _win(now)
    with _local.lock:
        rr = 0
        if round_robin:
            rr = _local.rr.get(alias, 0) + 1
            if consume:
                _local.rr[alias] = rr
        view = RouteView(instances={}, rr=rr)
        for pid, groups in provider_groups.items():
            info = state._local.info(pid)
            ru, _, _, tu, _, _ = _local.used(_rl_keys("p", pid, now), frac)
            cooling = {
                g: _local.cooling[(pid, g)] - now
                for g in groups
                if _local.cooling.get((pid, g), 0) > now
            }
            view.instances[pid] = InstanceView(
                circuit=info.state,
                failure_count=info.failure_count,
                retry_at=info.retry_at,
                inflight=_local.inflight.get(pid, 0),
                latency_ms=_local.ewma.get(pid),
                rpm_used=ru,
                tpm_used=tu,
                cooling=cooling,
            )
    return view


# --- per attempt ------------------------------------------------------------------------


@dataclass(slots=True)
class Lease:
    """An attempt's hold on an instance: release it exactly once when the attempt ends."""

    provider_id: int
    est_tokens: int
    started: float
    released: bool = False

    async def release(
        self,
        *,
        ok: bool | None,
        latency_ms: float | None = None,
        failure_threshold: int = 5,
        recovery_timeout: float = 60,
        actual_tokens: int | None = None,
    ) -> None:
        """``ok``: True success, False instance failure (counts toward the circuit), None
        neither (e.g. a 4xx that says nothing about the instance's health)."""
        if self.released:
            return
        self.released = True
        pid = self.provider_id
        now = time.time()
        delta = actual_tokens - self.est_tokens if actual_tokens is not None else 0
        client = state.shared_async()
        if client is not None:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.eval(
                        RELEASE_LUA,
                        1,
                        _inst_key(pid),
                        "" if latency_ms is None else repr(latency_ms),
                        EWMA_ALPHA,
                    )
                    if ok is True:
                        pipe.eval(state.SUCCESS_LUA, 1, state._key(pid), repr(now))
                    elif ok is False:
                        pipe.eval(
                            state.FAILURE_LUA,
                            1,
                            state._key(pid),
                            repr(now),
                            failure_threshold,
                            recovery_timeout,
                            "request",
                        )
                    if delta:
                        key = _rl_keys("p", pid, now)[2]
                        pipe.incrby(key, delta)
                        pipe.expire(key, _ttl())
                    await pipe.execute()
                return
            except redis.RedisError as exc:
                state.redis_failed(exc)
        with _local.lock:
            _local.inflight[pid] = max(0, _local.inflight.get(pid, 0) - 1)
            if latency_ms is not None:
                e = _local.ewma.get(pid)
                _local.ewma[pid] = (
                    latency_ms if e is None else EWMA_ALPHA * latency_ms + (1 - EWMA_ALPHA) * e
                )
            if delta:
                _local.add(_rl_keys("p", pid, now)[2], delta)
        if ok is True:
            state._local.success(pid, now)
        elif ok is False:
            state._local.failure(pid, now, failure_threshold, recovery_timeout, "request")


async def instance_acquire(
    provider_id: int,
    *,
    rpm: int | None,
    tpm: int | None,
    est_tokens: int,
    force: bool = False,
) -> tuple[int, Lease | None]:
    """Take the instance for one attempt: (ACQUIRE_OK, lease) or (reason code, None).

    ``force``: every candidate is open, this is the one whose retry comes first: skip the
    circuit check (limits still apply).
    """
    now = time.time()
    _, frac = _win(now)
    keys = _rl_keys("p", provider_id, now)
    client = state.shared_async()
    if client is not None:
        try:
            code = int(
                await _ACQUIRE.run(
                    client,
                    [state._key(provider_id), _inst_key(provider_id), *keys],
                    [
                        repr(now),
                        state.TRIAL_STALE_SECONDS,
                        _lim(rpm),
                        _lim(tpm),
                        est_tokens,
                        repr(frac),
                        _ttl(),
                        "1" if force else "0",
                    ],
                )
            )
            if code != ACQUIRE_OK:
                return code, None
            return ACQUIRE_OK, Lease(provider_id, est_tokens, now)
        except redis.RedisError as exc:
            state.redis_failed(exc)
    with _local.lock:
        ru, _, _, tu, _, _ = _local.used(keys, frac)
        if _over(ru, rpm, 1):
            return ACQUIRE_RPM, None
        if _over(tu, tpm, est_tokens):
            return ACQUIRE_TPM, None
    if not force and not state._local.allow(provider_id, now):
        return ACQUIRE_CIRCUIT, None
    with _local.lock:
        _local.add(keys[0], 1)
        _local.add(keys[2], est_tokens)
        _local.inflight[provider_id] = _local.inflight.get(provider_id, 0) + 1
    return ACQUIRE_OK, Lease(provider_id, est_tokens, now)


async def key_tokens_correct(vkey_id: int, delta: int) -> None:
    """Correct the key's token window by ``actual - estimated`` once usage is known."""
    if not delta:
        return
    now = time.time()
    key = _rl_keys("k", vkey_id, now)[2]
    client = state.shared_async()
    if client is not None:
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.incrby(key, delta)
                pipe.expire(key, _ttl())
                await pipe.execute()
            return
        except redis.RedisError as exc:
            state.redis_failed(exc)
    with _local.lock:
        _local.add(key, delta)


async def group_cool(provider_id: int, group: int, seconds: float) -> None:
    """Mark an account group of an instance as cooling (after a 429 on one of its keys)."""
    seconds = max(0.05, seconds)
    client = state.shared_async()
    if client is not None:
        try:
            await client.set(_cool_key(provider_id, group), b"1", px=int(seconds * 1000))
            return
        except redis.RedisError as exc:
            state.redis_failed(exc)
    with _local.lock:
        _local.cooling[(provider_id, group)] = time.time() + seconds


def local_clear() -> None:
    """Forget all per-process routing state (tests)."""
    global _local
    _local = _Local()
    state.local_state_clear()


def groups_of(keys: Iterable[Any]) -> tuple[int, ...]:
    return tuple(sorted({k.account_group for k in keys}))
