"""The routing state's in-process twin: the logic of the Lua scripts on this process's dicts,
used without ``REDIS_URL`` and while Redis errors (one process's view only).

Breaker steps go to the breaker's own twin, :data:`providers.circuit.local_breakers`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from gateway.routing.state.views import (
    ACQUIRE_CIRCUIT,
    ACQUIRE_OK,
    ACQUIRE_RPM,
    ACQUIRE_TPM,
    InstanceView,
    KeyRateLimited,
    RouteView,
)
from gateway.routing.state.windows import over_limit, retry_after_for, window_at, window_keys
from providers.circuit import local_breakers

# Window counters kept before old windows are pruned.
PRUNE_AT = 10_000


class LocalRouting:
    """Window counters, in-flight counts, latency averages, cooling and round-robin turns."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.inflight: dict[int, int] = {}
        self.ewma: dict[int, float] = {}
        self.cooling: dict[tuple[int, int], float] = {}
        self.rr: dict[str, int] = {}
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            for table in (self.counts, self.inflight, self.ewma, self.cooling, self.rr):
                table.clear()

    # The helpers below expect the lock held.

    def _used(
        self, keys: Sequence[str], frac: float
    ) -> tuple[float, float, float, float, float, float]:
        rc, rp, tc, tp = (self.counts.get(k, 0.0) for k in keys)
        return rp * (1 - frac) + rc, rc, rp, tp * (1 - frac) + tc, tc, tp

    def _add(self, key: str, n: float) -> None:
        self.counts[key] = self.counts.get(key, 0.0) + n
        if len(self.counts) > PRUNE_AT:
            idx, _ = window_at(time.time())
            for k in [k for k in self.counts if int(k.rsplit(":", 1)[1]) < idx - 1]:
                del self.counts[k]

    # What the scripts do.

    def key_check(
        self, vkey_id: int, rpm: int | None, tpm: int | None, cost: int, now: float, consume: bool
    ) -> None:
        """The key's part of ``view.lua``: raise KeyRateLimited, or count the request."""
        keys = window_keys("k", vkey_id, now)
        _, frac = window_at(now)
        with self.lock:
            ru, rc, rp, tu, tc, tp = self._used(keys, frac)
            if over_limit(ru, rpm, 1):
                assert rpm is not None
                raise KeyRateLimited("requests", rpm, retry_after_for(rpm, 1, rc, rp, now))
            if over_limit(tu, tpm, cost):
                assert tpm is not None
                raise KeyRateLimited("tokens", tpm, retry_after_for(tpm, cost, tc, tp, now))
            if consume:
                self._add(keys[0], 1)
                self._add(keys[2], cost)

    def read_view(
        self,
        now: float,
        alias: str,
        provider_groups: dict[int, Sequence[int]],
        round_robin: bool,
        consume: bool = True,
    ) -> RouteView:
        """The candidates' part of ``view.lua`` (never takes an instance)."""
        _, frac = window_at(now)
        with self.lock:
            rr = 0
            if round_robin:
                rr = self.rr.get(alias, 0) + 1
                if consume:
                    self.rr[alias] = rr
            view = RouteView(instances={}, rr=rr)
            for pid, groups in provider_groups.items():
                info = local_breakers.info(pid)
                ru, _, _, tu, _, _ = self._used(window_keys("p", pid, now), frac)
                cooling = {
                    g: self.cooling[(pid, g)] - now
                    for g in groups
                    if self.cooling.get((pid, g), 0) > now
                }
                view.instances[pid] = InstanceView(
                    circuit=info.state,
                    failure_count=info.failure_count,
                    retry_at=info.retry_at,
                    inflight=self.inflight.get(pid, 0),
                    latency_ms=self.ewma.get(pid),
                    rpm_used=ru,
                    tpm_used=tu,
                    cooling=cooling,
                )
        return view

    def acquire(
        self,
        provider_id: int,
        now: float,
        rpm: int | None,
        tpm: int | None,
        est_tokens: int,
        force: bool,
    ) -> int:
        """``instance_acquire``: the ACQUIRE_* code."""
        _, frac = window_at(now)
        keys = window_keys("p", provider_id, now)
        with self.lock:
            ru, _, _, tu, _, _ = self._used(keys, frac)
            if over_limit(ru, rpm, 1):
                return ACQUIRE_RPM
            if over_limit(tu, tpm, est_tokens):
                return ACQUIRE_TPM
        if not force and not local_breakers.allow(provider_id, now):
            return ACQUIRE_CIRCUIT
        with self.lock:
            self._add(keys[0], 1)
            self._add(keys[2], est_tokens)
            self.inflight[provider_id] = self.inflight.get(provider_id, 0) + 1
        return ACQUIRE_OK

    def release(
        self,
        provider_id: int,
        now: float,
        ok: bool | None,
        latency_ms: float | None,
        alpha: float,
        failure_threshold: int,
        recovery_timeout: float,
        delta: int,
    ) -> None:
        """``release.lua``."""
        with self.lock:
            self.inflight[provider_id] = max(0, self.inflight.get(provider_id, 0) - 1)
            if latency_ms is not None:
                e = self.ewma.get(provider_id)
                self.ewma[provider_id] = (
                    latency_ms if e is None else alpha * latency_ms + (1 - alpha) * e
                )
            if delta:
                self._add(window_keys("p", provider_id, now)[2], delta)
        if ok is True:
            local_breakers.success(provider_id, now)
        elif ok is False:
            local_breakers.failure(provider_id, now, failure_threshold, recovery_timeout)

    def key_tokens_add(self, vkey_id: int, delta: int, now: float) -> None:
        with self.lock:
            self._add(window_keys("k", vkey_id, now)[2], delta)

    def group_cool(self, provider_id: int, group: int, seconds: float) -> None:
        with self.lock:
            self.cooling[(provider_id, group)] = time.time() + seconds


local_routing = LocalRouting()
