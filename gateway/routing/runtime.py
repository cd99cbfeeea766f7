"""Shared routing state on the request path: limits, in-flight counts, latency, cooling.

Per request the pipeline makes, with Redis:

1. one Lua call (:func:`route_view_read`) that consumes the virtual key's rate limit and
   reads, for every candidate instance, its circuit, in-flight count, latency average,
   rate-limit windows and cooling account groups, plus the alias's round-robin counter (INCR);
2. per attempt, one Lua call (:func:`instance_acquire`) that re-checks the instance's limits,
   takes the circuit (the half-open trial is handed out here, atomically across processes),
   counts the request against the instance's windows and increments its in-flight count.
   When the alias has one candidate (the common case) its first attempt's acquire runs inside
   step 1's script instead: the order cannot change what is tried first, so a round trip
   is saved;
3. one Lua call when the attempt ends (:meth:`Lease.release`): in-flight down, latency
   average, circuit success/failure, token correction.

Every script runs by EVALSHA (the source is sent only when Redis does not know it yet).

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
from providers.state import ALLOW_FN, FAILURE_FN, SUCCESS_FN, CircuitState, _Script

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

# Step 2 as a Lua function: re-check the instance's limits, take the circuit (the half-open
# trial is handed out here, atomically across processes), count the request against the
# instance's windows and its in-flight count. Returns an ACQUIRE_* code.
ACQUIRE_FN = """
local function instance_acquire(cb, inst, r_cur, r_prev, t_cur, t_prev, now, stale, rpm, tpm,
                                cost, frac, ttl, force)
  local ru = rl_used(r_cur, r_prev, frac)
  if rl_over(ru, rpm, 1) then return 2 end
  local tu = rl_used(t_cur, t_prev, frac)
  if rl_over(tu, tpm, cost) then return 3 end
  if force ~= '1' and circuit_allow(cb, now, stale) == 0 then return 0 end
  redis.call('INCR', r_cur)
  redis.call('EXPIRE', r_cur, ttl)
  redis.call('INCRBY', t_cur, cost)
  redis.call('EXPIRE', t_cur, ttl)
  redis.call('HINCRBY', inst, 'inflight', 1)
  redis.call('EXPIRE', inst, 3600)
  return 1
end
"""

# KEYS: cb inst r_cur r_prev t_cur t_prev ; ARGV: now stale rpm tpm cost frac ttl force
ACQUIRE_LUA = (
    _RL_FN
    + ALLOW_FN
    + ACQUIRE_FN
    + """
return instance_acquire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])
"""
)

# The whole read of step 1 in one script, so one round trip and one reply to parse whatever
# the number of candidates (a pipeline of small commands cost more client CPU than the rest
# of the request's Redis work together).
# ARGV: frac consume key_limited key_rpm key_tpm est ttl round_robin n_candidates acquire now
# stale inst_rpm inst_tpm, then one group count per candidate. With acquire = "1" (a single
# candidate, see route_view_read) the script also takes that instance for the first attempt
# (step 2) after reading it, and appends the ACQUIRE_* code: one round trip fewer.
# KEYS: [4 key windows, if key_limited] [round-robin counter, if round_robin], then per
# candidate: circuit, instance hash, its 4 windows, one cooling key per account group.
# Returns {key verdict {ok, which, cur, prev}, rr, per candidate {state, failures, retry_at,
# inflight, ewma, r_cur, r_prev, t_cur, t_prev, cooling pttl...}}; only the verdict when the
# key is over a limit (then nothing was counted).
VIEW_LUA = (
    _RL_FN
    + ALLOW_FN
    + ACQUIRE_FN
    + """
local frac = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local k = 1
if ARGV[3] == '1' then
  if consume then
    local ru, rc, rp = rl_used(KEYS[1], KEYS[2], frac)
    if rl_over(ru, tonumber(ARGV[4]), 1) then return {{0, 1, rc, rp}} end
    local tu, tc, tp = rl_used(KEYS[3], KEYS[4], frac)
    if rl_over(tu, tonumber(ARGV[5]), tonumber(ARGV[6])) then return {{0, 2, tc, tp}} end
    redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ARGV[7])
    redis.call('INCRBY', KEYS[3], ARGV[6])
    redis.call('EXPIRE', KEYS[3], ARGV[7])
  end
  k = 5
end
local rr = 0
if ARGV[8] == '1' then
  if consume then
    rr = redis.call('INCR', KEYS[k])
  else
    rr = tonumber(redis.call('GET', KEYS[k]) or '0')
  end
  k = k + 1
end
local out = {{1, 0, 0, 0}, rr}
local first = k
for i = 1, tonumber(ARGV[9]) do
  local cb = redis.call('HMGET', KEYS[k], 'state', 'failures', 'retry_at')
  local inst = redis.call('HMGET', KEYS[k + 1], 'inflight', 'ewma')
  local w = redis.call('MGET', KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5])
  k = k + 6
  local entry = {cb[1], cb[2], cb[3], inst[1], inst[2], w[1], w[2], w[3], w[4]}
  for g = 1, tonumber(ARGV[14 + i]) do
    entry[9 + g] = redis.call('PTTL', KEYS[k])
    k = k + 1
  end
  out[2 + i] = entry
end
if ARGV[10] == '1' then
  out[#out + 1] = instance_acquire(KEYS[first], KEYS[first + 1], KEYS[first + 2],
    KEYS[first + 3], KEYS[first + 4], KEYS[first + 5], tonumber(ARGV[11]), tonumber(ARGV[12]),
    tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[6]), frac, ARGV[7], '0')
end
return out
"""
)

# Step 3 in one script: in-flight down, latency average, the circuit's success or failure,
# the instance's token window corrected by (actual - estimated).
# KEYS: inst circuit tokens_window ; ARGV: latency_ms ("" = none) alpha ok ("1" success,
# "0" failure, "" neither) now threshold recovery delta ttl
RELEASE_LUA = (
    SUCCESS_FN
    + FAILURE_FN
    + """
local n = redis.call('HINCRBY', KEYS[1], 'inflight', -1)
if n < 0 then redis.call('HSET', KEYS[1], 'inflight', 0) end
if ARGV[1] ~= '' then
  local x = tonumber(ARGV[1])
  local e = tonumber(redis.call('HGET', KEYS[1], 'ewma') or '')
  if e then x = tonumber(ARGV[2]) * x + (1 - tonumber(ARGV[2])) * e end
  redis.call('HSET', KEYS[1], 'ewma', tostring(x))
end
redis.call('EXPIRE', KEYS[1], 3600)
if ARGV[3] == '1' then
  circuit_success(KEYS[2], ARGV[4])
elseif ARGV[3] == '0' then
  circuit_failure(KEYS[2], ARGV[4], ARGV[5], ARGV[6], 'request')
end
if ARGV[7] ~= '0' then
  redis.call('INCRBY', KEYS[3], ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
return 1
"""
)

_VIEW = _Script(VIEW_LUA)
_RELEASE = _Script(RELEASE_LUA)
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
    # The single candidate already taken for its first attempt (``acquire`` of
    # route_view_read); None when not asked, refused, or without Redis.
    lease: Lease | None = None


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
    acquire: tuple[int | None, int | None] | None = None,
) -> RouteView:
    """Read the candidates' shared state; count the request against the key's limits.

    Raises :class:`KeyRateLimited` when the key is over a limit (nothing is counted then).
    ``provider_groups``: instance id -> the account groups of its keys.
    ``acquire``: (rpm, tpm) of the only candidate: with Redis, also take it for the first
    attempt in the same round trip (``view.lease``; see :func:`instance_acquire`). The
    caller must use or release that lease. Ignored with more than one candidate, when not
    consuming, and without Redis (the per-process path has no round trip to save).
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
                acquire if consume_key and len(provider_groups) == 1 else None,
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
    acquire: tuple[int | None, int | None] | None,
) -> RouteView:
    _, frac = _win(now)
    keys: list[str] = []
    if key_limited:
        assert vkey_id is not None
        keys += _rl_keys("k", vkey_id, now)
    if round_robin:
        keys.append(f"gw:rr:{alias}")
    group_counts: list[int] = []
    for pid, groups in provider_groups.items():
        keys += [state._key(pid), _inst_key(pid), *_rl_keys("p", pid, now)]
        keys += [_cool_key(pid, g) for g in groups]
        group_counts.append(len(groups))
    args: list[Any] = [
        repr(frac),
        "1" if consume_key else "0",
        "1" if key_limited else "0",
        _lim(vkey_rpm),
        _lim(vkey_tpm),
        est_tokens,
        _ttl(),
        "1" if round_robin else "0",
        len(group_counts),
        "0" if acquire is None else "1",
        repr(now),
        state.TRIAL_STALE_SECONDS,
        _lim(acquire[0] if acquire else None),
        _lim(acquire[1] if acquire else None),
        *group_counts,
    ]
    results = list(await _VIEW.run(client, keys, args))
    ok, which, cur, prev = (int(x) for x in results.pop(0))
    if not ok:
        limit = int(vkey_rpm if which == 1 else vkey_tpm)  # type: ignore[arg-type]
        cost = 1 if which == 1 else est_tokens
        raise KeyRateLimited(
            "requests" if which == 1 else "tokens",
            limit,
            retry_after_for(limit, cost, cur, prev, now),
        )
    turn = int(results.pop(0) or 0)
    rr = turn + (0 if consume_key else 1) if round_robin else 0
    view = RouteView(instances={}, rr=rr)
    for pid, groups in provider_groups.items():
        entry = results.pop(0)
        cb, inst = entry[0:3], entry[3:5]
        rc, rp, tc, tp = (float(x or 0) for x in entry[5:9])
        cooling: dict[int, float] = {}
        for g, ttl in zip(groups, entry[9:], strict=True):
            if int(ttl) > 0:
                cooling[g] = int(ttl) / 1000
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
    if acquire is not None and int(results.pop(0)) == ACQUIRE_OK:
        view.lease = Lease(next(iter(provider_groups)), est_tokens, now)
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
                await _RELEASE.run(
                    client,
                    [_inst_key(pid), state._key(pid), _rl_keys("p", pid, now)[2]],
                    [
                        "" if latency_ms is None else repr(latency_ms),
                        EWMA_ALPHA,
                        {True: "1", False: "0", None: ""}[ok],
                        repr(now),
                        failure_threshold,
                        recovery_timeout,
                        delta,
                        _ttl(),
                    ],
                )
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
