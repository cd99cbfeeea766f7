"""What a breaker is: its states, what is shown of it, where Redis keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# A trial that never reported back (its process died) is given up after this long, so a
# half-open circuit cannot stay stuck: another trial is allowed.
TRIAL_STALE_SECONDS = 120.0
# The hash fields read back into a CircuitInfo, in CircuitInfo's order.
INFO_FIELDS = ("state", "failures", "opened_at", "retry_at", "last_success", "last_failure")


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitInfo:
    """One instance's breaker as the health page, route explain and admin show it."""

    state: CircuitState = CircuitState.CLOSED
    failure_count: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
    last_success: float | None = None
    last_failure: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "failure_count": self.failure_count,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
        }


def instance_tag(provider_id: int) -> str:
    """The Redis Cluster hash tag of every key of one instance (breaker, routing state): one
    slot, so a script touching several of them runs on one node."""
    return f"{{i:{provider_id}}}"


def circuit_key(provider_id: int) -> str:
    """The Redis hash of an instance's breaker: ``gw:{i:<id>}:cb``."""
    return f"gw:{instance_tag(provider_id)}:cb"


def _num(value: Any) -> float | None:
    if value is None or value in (b"", ""):
        return None
    return float(value)


def info_from_hash(values: list[Any]) -> CircuitInfo:
    """A CircuitInfo from the ``INFO_FIELDS`` values of a breaker hash (HMGET's reply)."""
    state, failures, opened_at, retry_at, last_success, last_failure = values
    return CircuitInfo(
        state=CircuitState(state.decode() if state else "closed"),
        failure_count=int(failures or 0),
        opened_at=_num(opened_at),
        retry_at=_num(retry_at),
        last_success=_num(last_success),
        last_failure=_num(last_failure),
    )
