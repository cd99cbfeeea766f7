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
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from gateway.routing.state.releases import run_script
from gateway.routing.state.views import ACQUIRE_OK, InstanceView, KeyRateLimited, RouteView
from gateway.routing.state.windows import (
    cooling_key,
    instance_key,
    limit_arg,
    retry_after_for,
    round_robin_key,
    window_at,
    window_keys,
    window_ttl,
)
from providers.circuit import CIRCUIT_LUA, TRIAL_STALE_SECONDS, CircuitState, circuit_key
from providers.redis_conn import lua_source

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
    _, frac = window_at(now)
    keys: list[str] = []
    if vkey_id is not None:
        keys += window_keys("k", vkey_id, now)
    if round_robin:
        keys.append(round_robin_key(alias))
    group_counts: list[int] = []
    for pid, groups in provider_groups.items():
        keys += [circuit_key(pid), instance_key(pid), *window_keys("p", pid, now)]
        keys += [cooling_key(pid, g) for g in groups]
        group_counts.append(len(groups))
    args = orjson.dumps(
        {
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
    )
    results = list(await run_script(client, scripts_for(client).view, keys, args))
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
    return view, acquire is not None and int(results.pop(0)) == ACQUIRE_OK


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
    _, frac = window_at(now)
    keys = [circuit_key(provider_id), instance_key(provider_id)]
    keys += window_keys("p", provider_id, now)
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
