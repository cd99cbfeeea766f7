"""The routing state in Redis: one EVALSHA per step, shared by every gateway process.

Steps 1 and 2 are awaited here, with the process's queued releases in the same pipeline (so
the process reads its own releases); step 3 (the release) is queued and sent batched by
:mod:`~gateway.routing.state.releases`. The scripts are ``lua/view.lua``,
``lua/acquire.lua`` and ``lua/release.lua`` (the last kept in ``releases.py``), each prefixed
with the function libraries it calls (the breaker's ``circuit.lua``, ``lua/limits.lua``) and
registered with redis-py's ``register_script``: EVALSHA, the source is sent only when Redis
does not know it yet. Arguments travel as one JSON object (``ARGV[1]``, named fields, decoded
with cjson): measured cheaper than a dozen positional arguments, which redis-py encodes one by
one. Every function here raises ``redis.RedisError`` for the caller to fall back to the
in-process twin (:mod:`gateway.routing.state.local_backend`).

Redis Cluster runs a script on one hash slot only. Acquire and release touch one instance's
keys (one slot: ``windows.py``'s hash tags); the view touches the key's windows, the alias's
round-robin counter and every candidate instance, so on a cluster it runs as several calls of
the same ``view.lua``, one per slot (:func:`_view_per_slot`), whose replies are put together
into the reply the single call gives. Plain Redis and Sentinel keep the one round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
import redis.asyncio as aioredis

from gateway.routing.state.releases import releases_flush, run_script
from gateway.routing.state.views import ACQUIRE_OK, InstanceView, KeyRateLimited, RouteView
from gateway.routing.state.windows import (
    cooling_key,
    instance_key,
    limit_arg,
    retry_after_for,
    round_robin_key,
    window_at,
    window_keys_at,
    window_ttl,
)
from providers.circuit import CIRCUIT_LUA, TRIAL_STALE_SECONDS, CircuitState, circuit_key
from providers.redis_conn import is_cluster, lua_source

_PACKAGE = "gateway.routing.state"
VIEW_LUA = "\n".join((CIRCUIT_LUA, lua_source(_PACKAGE, "limits.lua", "view.lua")))
ACQUIRE_LUA = "\n".join((CIRCUIT_LUA, lua_source(_PACKAGE, "limits.lua", "acquire.lua")))


class Scripts:
    """The routing scripts registered on one asyncio client."""

    __slots__ = ("acquire", "client", "view")

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.view = client.register_script(VIEW_LUA)
        self.acquire = client.register_script(ACQUIRE_LUA)


# The scripts of the last client used. A gateway process runs one event loop, so one client
# (redis_conn keeps one per loop): registering once and comparing identities keeps the
# per-request cost at one attribute read; another loop's client simply registers anew.
_bound: Scripts | None = None


def scripts_for(client: aioredis.Redis) -> Scripts:
    """The routing scripts registered on ``client``."""
    global _bound
    bound = _bound
    if bound is None or bound.client is not client:
        bound = _bound = Scripts(client)
    return bound


async def read_view(
    client: aioredis.Redis,
    now: float,
    alias: str,
    provider_groups: dict[int, Sequence[int]],
    round_robin: bool,
    vkey_id: int | None,
    vkey_rpm: int | None,
    vkey_tpm: int | None,
    est_tokens: int,
    consume_key: bool,
    acquire: tuple[int | None, int | None] | None,
) -> tuple[RouteView, bool]:
    """Step 1 (``lua/view.lua``): the view, and whether the lone candidate was taken.

    ``vkey_id``: the key to count, None when it has no limit. Raises KeyRateLimited.
    """
    idx, frac = window_at(now)
    keys: list[str] = []
    if vkey_id is not None:
        keys += window_keys_at("k", vkey_id, idx)
    if round_robin:
        keys.append(round_robin_key(alias))
    group_counts: list[int] = []
    for pid, groups in provider_groups.items():
        keys += _candidate_keys(pid, tuple(groups), idx)
        group_counts.append(len(groups))
    fields: dict[str, Any] = {
        "frac": frac,
        "consume": consume_key,
        "key_limited": vkey_id is not None,
        "key_rpm": limit_arg(vkey_rpm),
        "key_tpm": limit_arg(vkey_tpm),
        "cost": est_tokens,
        "ttl": window_ttl(),
        "round_robin": round_robin,
        "acquire": acquire is not None,
        "now": now,
        "stale": TRIAL_STALE_SECONDS,
        "inst_rpm": limit_arg(acquire[0] if acquire else None),
        "inst_tpm": limit_arg(acquire[1] if acquire else None),
        "groups": group_counts,
    }
    if is_cluster(client):
        # The queued releases go first (the process reads its own), then the per-slot calls.
        await releases_flush()
        results = await _view_per_slot(client, fields, keys, vkey_id is not None, provider_groups)
    else:
        script = scripts_for(client).view
        results = await run_script(client, script, keys, orjson.dumps(fields))
    ok, which, cur, prev = (int(x) for x in results[0])
    if not ok:
        limit = int(vkey_rpm if which == 1 else vkey_tpm)  # type: ignore[arg-type]
        cost = 1 if which == 1 else est_tokens
        raise KeyRateLimited(
            "requests" if which == 1 else "tokens",
            limit,
            retry_after_for(limit, cost, cur, prev, now),
        )
    turn = int(results[1] or 0)
    rr = turn + (0 if consume_key else 1) if round_robin else 0
    view = RouteView(instances={}, rr=rr)
    kept = 1 - frac  # the share of the previous window still inside the sliding one
    for entry, (pid, groups) in zip(results[2:], provider_groups.items(), strict=False):
        state, failures, retry_at, inflight, latency, rc, rp, tc, tp = entry[:9]
        cooling: dict[int, float] = {}
        for g, ttl in zip(groups, entry[9:], strict=True):
            if int(ttl) > 0:
                cooling[g] = int(ttl) / 1000
        view.instances[pid] = InstanceView(
            circuit=_CIRCUIT_STATES.get(state) or CircuitState.CLOSED,
            failure_count=int(failures or 0),
            retry_at=float(retry_at) if retry_at else None,
            inflight=max(0, int(inflight or 0)),
            latency_ms=float(latency) if latency else None,
            rpm_used=float(rp or 0) * kept + float(rc or 0),
            tpm_used=float(tp or 0) * kept + float(tc or 0),
            cooling=cooling,
        )
    return view, acquire is not None and int(results[2 + len(provider_groups)]) == ACQUIRE_OK


# The breaker's state as the script returns it (bytes); nil (never opened) is closed.
_CIRCUIT_STATES = {s.value.encode(): s for s in CircuitState}


# The same names for every request to the instance in one window: built once per window.
@lru_cache(maxsize=1024)
def _candidate_keys(pid: int, groups: tuple[int, ...], idx: int) -> tuple[str, ...]:
    """One candidate's keys in window ``idx``, in ``view.lua``'s order (all in the instance's
    hash slot): breaker, in-flight hash, the four windows, then the cooling keys of
    ``groups``. Without groups, ``acquire.lua``'s keys."""
    windows = window_keys_at("p", pid, idx)
    cooling = (cooling_key(pid, g) for g in groups)
    return (circuit_key(pid), instance_key(pid), *windows, *cooling)


async def _view_per_slot(
    client: aioredis.Redis,
    fields: dict[str, Any],
    keys: list[str],
    key_limited: bool,
    provider_groups: dict[int, Sequence[int]],
) -> list[Any]:
    """``view.lua`` on a Redis Cluster: one call per hash slot, the single call's reply.

    The key's windows first (over its limit: nothing else is counted, as in the single
    call); then the round-robin counter and each candidate concurrently, the lone candidate's
    acquire in its own call. A failure after the key was counted leaves it counted, as a
    request that failed later would.
    """
    view = scripts_for(client).view
    alone: dict[str, Any] = {**fields, "key_limited": False, "round_robin": False}
    alone.update(acquire=False, groups=[])
    at = 0
    if key_limited:
        at = 4
        if fields["consume"]:  # only counting touches the key's windows
            reply = await view(keys[:4], (orjson.dumps({**alone, "key_limited": True}),))
            if not int(reply[0][0]):
                return list(reply)
    calls = []
    if fields["round_robin"]:
        calls.append(view(keys[at : at + 1], (orjson.dumps({**alone, "round_robin": True}),)))
        at += 1
    for n, groups in enumerate(provider_groups.values()):
        size = 6 + len(groups)
        one = {**alone, "groups": [len(groups)], "acquire": fields["acquire"] and n == 0}
        calls.append(view(keys[at : at + size], (orjson.dumps(one),)))
        at += size
    replies = list(await asyncio.gather(*calls))
    rr = replies.pop(0)[1] if fields["round_robin"] else 0
    results: list[Any] = [[1, 0, 0, 0], rr]
    results += [reply[2] for reply in replies]
    if fields["acquire"] and replies:
        results.append(replies[0][3])
    return results


async def acquire(
    client: aioredis.Redis,
    provider_id: int,
    now: float,
    rpm: int | None,
    tpm: int | None,
    est_tokens: int,
    force: bool,
) -> int:
    """Step 2 (``lua/acquire.lua``): the ACQUIRE_* code."""
    idx, frac = window_at(now)
    keys = list(_candidate_keys(provider_id, (), idx))
    args = orjson.dumps(
        {
            "now": now,
            "stale": TRIAL_STALE_SECONDS,
            "rpm": limit_arg(rpm),
            "tpm": limit_arg(tpm),
            "cost": est_tokens,
            "frac": frac,
            "ttl": window_ttl(),
            "force": force,
        }
    )
    return int(await run_script(client, scripts_for(client).acquire, keys, args))


async def group_cool(client: aioredis.Redis, provider_id: int, group: int, seconds: float) -> None:
    await client.set(cooling_key(provider_id, group), b"1", px=int(seconds * 1000))
