"""Circuit breaker state per provider instance, shared through Redis.

closed -> open after ``failure_threshold`` consecutive failures; open for ``recovery_timeout``
seconds; then half-open: exactly one trial request is let through (across every process, by
an atomic Lua script), its success closes the circuit, its failure reopens it. A successful
health probe of an open instance moves it to half-open at once (the next request is the trial).

The state machine is written twice, kept in step: in Lua (``lua/circuit.lua``, the functions
the request path's routing scripts and the probe script run atomically in Redis) and in Python
(:class:`LocalBreakers`, used without ``REDIS_URL`` and while Redis errors).

The request path takes and reports breaker steps through ``gateway.routing.state`` (in the
same script as its limits, one round trip each); Celery, management commands and the admin
use the sync functions here.
"""

from __future__ import annotations

from providers.circuit.local import LocalBreakers, local_breakers
from providers.circuit.model import (
    TRIAL_STALE_SECONDS,
    CircuitInfo,
    CircuitState,
    circuit_key,
    instance_tag,
)
from providers.circuit.shared import (
    CIRCUIT_LUA,
    REDIS_RETRY_SECONDS,
    circuit_info_all_sync,
    circuit_record_probe_sync,
    circuit_reset_sync,
    local_state_clear,
    redis_failed,
    redis_usable,
    shared_async,
    shared_sync,
)

__all__ = [
    "CIRCUIT_LUA",
    "REDIS_RETRY_SECONDS",
    "TRIAL_STALE_SECONDS",
    "CircuitInfo",
    "CircuitState",
    "LocalBreakers",
    "circuit_info_all_sync",
    "circuit_key",
    "circuit_record_probe_sync",
    "circuit_reset_sync",
    "instance_tag",
    "local_breakers",
    "local_state_clear",
    "redis_failed",
    "redis_usable",
    "shared_async",
    "shared_sync",
]
