"""What the routing state tells a request: the candidates' state, the key's verdict, the
acquire codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from providers.circuit import CircuitState

if TYPE_CHECKING:
    from gateway.routing.state.api import Lease

# Codes of instance_acquire (lua/limits.lua returns the same numbers).
ACQUIRE_OK, ACQUIRE_CIRCUIT, ACQUIRE_RPM, ACQUIRE_TPM = 1, 0, 2, 3
ACQUIRE_REASONS = {
    ACQUIRE_CIRCUIT: "circuit open",
    ACQUIRE_RPM: "instance at its requests-per-minute limit",
    ACQUIRE_TPM: "instance at its tokens-per-minute limit",
}


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
