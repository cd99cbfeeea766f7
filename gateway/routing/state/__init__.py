"""Shared routing state on the request path: limits, in-flight counts, latency, cooling.

Per request the pipeline makes, with Redis:

1. one Lua call (:func:`route_view_read`, ``lua/view.lua``) that consumes the virtual key's
   rate limit and reads, for every candidate instance, its circuit, in-flight count, latency
   average, rate-limit windows and cooling account groups, plus the alias's round-robin
   counter (INCR);
2. per attempt, one Lua call (:func:`instance_acquire`, ``lua/acquire.lua``) that re-checks
   the instance's limits, takes the circuit (the half-open trial is handed out here,
   atomically across processes), counts the request against the instance's windows and
   increments its in-flight count. When the alias has one candidate (the common case) its
   first attempt's acquire runs inside step 1's script instead: the order cannot change what
   is tried first, so a round trip is saved;
3. one Lua call when the attempt ends (:meth:`Lease.release`, ``lua/release.lua``): in-flight
   down, latency average, circuit success/failure, token correction. It is queued, not
   awaited, and sent in the usage flusher's pipeline with the ``XADD``s (failures at once;
   see :mod:`~gateway.routing.state.releases` for the staleness bound), so it costs the
   request no round trip of its own.

Every script runs by EVALSHA (the source is sent only when Redis does not know it yet). Steps
1 and 2 of the requests a worker serves at once go out together: one pipeline per turn of the
event loop (:class:`~gateway.routing.state.releases.ScriptBatch`).
Without Redis, or while it errors, the same logic runs on per-process dicts
(:mod:`~gateway.routing.state.local_backend`).
"""

from __future__ import annotations

from gateway.routing.state.api import (
    EWMA_ALPHA,
    Lease,
    group_cool,
    groups_of,
    instance_acquire,
    key_tokens_correct,
    local_clear,
    route_view_read,
)
from gateway.routing.state.releases import releases_flush
from gateway.routing.state.views import (
    ACQUIRE_CIRCUIT,
    ACQUIRE_OK,
    ACQUIRE_REASONS,
    ACQUIRE_RPM,
    ACQUIRE_TPM,
    InstanceView,
    KeyRateLimited,
    RouteView,
)
from gateway.routing.state.windows import retry_after_for

__all__ = [
    "ACQUIRE_CIRCUIT",
    "ACQUIRE_OK",
    "ACQUIRE_REASONS",
    "ACQUIRE_RPM",
    "ACQUIRE_TPM",
    "EWMA_ALPHA",
    "InstanceView",
    "KeyRateLimited",
    "Lease",
    "RouteView",
    "group_cool",
    "groups_of",
    "instance_acquire",
    "key_tokens_correct",
    "local_clear",
    "releases_flush",
    "retry_after_for",
    "route_view_read",
]
