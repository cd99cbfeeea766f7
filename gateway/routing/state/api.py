"""The routing state's operations: Redis when it is configured and answering, else the
in-process twin. A Redis error never fails a request: it is noted (the next requests use the
twin for a short pause) and the same step runs on the twin."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from gateway.routing.state import redis_backend
from gateway.routing.state.local_backend import local_routing
from gateway.routing.state.releases import (
    PendingRelease,
    PendingTokens,
    release_call,
    release_queue,
)
from gateway.routing.state.views import ACQUIRE_OK, RouteView
from providers.circuit import local_state_clear, redis_failed, shared_async

EWMA_ALPHA = 0.3


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
    client = shared_async()
    if client is not None:
        try:
            view, taken = await redis_backend.read_view(
                client,
                now,
                alias,
                provider_groups,
                round_robin,
                vkey_id if key_limited else None,
                vkey_rpm,
                vkey_tpm,
                est_tokens,
                consume_key,
                acquire if consume_key and len(provider_groups) == 1 else None,
            )
            if taken:
                view.lease = Lease(next(iter(provider_groups)), est_tokens, now)
            return view
        except redis.RedisError as exc:
            redis_failed(exc)
    if key_limited:
        assert vkey_id is not None
        local_routing.key_check(vkey_id, vkey_rpm, vkey_tpm, est_tokens, now, consume_key)
    return local_routing.read_view(now, alias, provider_groups, round_robin, consume_key)


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
        args = (pid, now, ok, latency_ms, EWMA_ALPHA, failure_threshold, recovery_timeout, delta)
        if shared_async() is not None:
            # Queued, not awaited (releases.py): it rides the usage flush's pipeline. A
            # failure counts toward the circuit, so it goes out at once.
            keys, argv = release_call(*args)
            await release_queue.add(PendingRelease(keys, argv, args), urgent=ok is False)
            return
        local_routing.release(*args)


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
    client = shared_async()
    code: int | None = None
    if client is not None:
        try:
            code = await redis_backend.acquire(
                client, provider_id, now, rpm, tpm, est_tokens, force
            )
        except redis.RedisError as exc:
            redis_failed(exc)
    if code is None:
        code = local_routing.acquire(provider_id, now, rpm, tpm, est_tokens, force)
    if code != ACQUIRE_OK:
        return code, None
    return ACQUIRE_OK, Lease(provider_id, est_tokens, now)


async def key_tokens_correct(vkey_id: int, delta: int) -> None:
    """Correct the key's token window by ``actual - estimated`` once usage is known."""
    if not delta:
        return
    now = time.time()
    if shared_async() is not None:
        await release_queue.add(PendingTokens(vkey_id, delta, now))
        return
    local_routing.key_tokens_add(vkey_id, delta, now)


async def group_cool(provider_id: int, group: int, seconds: float) -> None:
    """Mark an account group of an instance as cooling (after a 429 on one of its keys)."""
    seconds = max(0.05, seconds)
    client = shared_async()
    if client is not None:
        try:
            await redis_backend.group_cool(client, provider_id, group, seconds)
            return
        except redis.RedisError as exc:
            redis_failed(exc)
    local_routing.group_cool(provider_id, group, seconds)


def local_clear() -> None:
    """Forget all per-process routing and breaker state (tests)."""
    local_routing.clear()
    release_queue.clear()
    local_state_clear()


def groups_of(keys: Iterable[Any]) -> tuple[int, ...]:
    """The account groups of an instance's keys, sorted."""
    return tuple(sorted({k.account_group for k in keys}))
