"""The breaker's in-process twin: the state machine of ``lua/circuit.lua`` in this process's
memory, used without ``REDIS_URL`` and while Redis errors (one process's view only)."""

from __future__ import annotations

import threading
from typing import Any

from providers.circuit.model import TRIAL_STALE_SECONDS, CircuitInfo, CircuitState


class LocalBreakers:
    """Every instance's breaker in this process; each method mirrors a Lua function."""

    def __init__(self) -> None:
        self.data: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def allow(self, pid: int, now: float) -> bool:
        """``circuit_allow``: may a request go now? Hands out the one half-open trial."""
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
        """``circuit_success``: closed, count reset."""
        with self.lock:
            self._success(self.data.setdefault(pid, {}), now)

    def failure(self, pid: int, now: float, threshold: int, recovery: float) -> CircuitState:
        """``circuit_failure``: count a failure; returns the state after it."""
        with self.lock:
            h = self.data.setdefault(pid, {})
            state = h.get("state", "closed")
            h["failures"] = h.get("failures", 0) + 1
            h["last_failure"] = now
            if state in ("half_open", "open") or h["failures"] >= threshold:
                h.update(state="open", opened_at=now, retry_at=now + recovery, trial_at=None)
                return CircuitState.OPEN
            return CircuitState(state)

    def probe_success(self, pid: int, now: float) -> CircuitState:
        """``probe.lua`` for a good probe: open -> half-open, closed -> count reset; returns the
        state after it."""
        with self.lock:
            h = self.data.setdefault(pid, {})
            state = h.get("state", "closed")
            if state == "closed":
                self._success(h, now)
                return CircuitState.CLOSED
            h["last_success"] = now
            if state == "open":
                h["state"] = "half_open"
                h["trial_at"] = None
            return CircuitState.HALF_OPEN

    @staticmethod
    def _success(h: dict[str, Any], now: float) -> None:
        h.update(
            state="closed",
            failures=0,
            last_success=now,
            opened_at=None,
            retry_at=None,
            trial_at=None,
        )

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

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


local_breakers = LocalBreakers()
