"""The route explanation and the plan skip an instance for its limits exactly when its acquire
would refuse it: with sliding windows the count is fractional near a window's turn."""

from __future__ import annotations

import pytest

from gateway.routing.plan import _skip_reason
from gateway.routing.state import ACQUIRE_OK
from gateway.routing.state.local_backend import LocalRouting
from gateway.routing.state.windows import window, window_keys
from gateway.routing.table import Candidate
from tests.factories import provider_snapshot, route_candidate

PID = 9_901
LIMIT = 3


def limited(rpm: int | None = None, tpm: int | None = None) -> Candidate:
    provider = provider_snapshot(
        id=PID, name="limited", requests_per_minute=rpm, tokens_per_minute=tpm
    )
    return route_candidate(provider)


@pytest.mark.parametrize(
    ("previous", "current", "into_window", "refused"),
    [
        (3, 0, 0.0, True),  # the window just turned: all three still count
        (3, 0, 0.004, True),  # 2.99 of 3: no room for one more
        (3, 0, 0.34, False),  # 1.98: room again
        (2, 0, 0.0, False),  # exactly one left
        (0, 2, 0.5, False),
        (1, 2, 0.5, True),  # 2.5 of 3
        (0, 0, 0.2, False),
    ],
)
def test_skipped_exactly_when_the_acquire_refuses(
    previous: int, current: int, into_window: float, refused: bool
) -> None:
    routing = LocalRouting()
    now = (1_000_000 + into_window) * window()
    cur_key, prev_key = window_keys("p", PID, now)[:2]
    routing.counts[cur_key], routing.counts[prev_key] = current, previous
    info = routing.read_view(now, "m", {PID: [0]}, round_robin=False, consume=False).instances[PID]

    reason = _skip_reason(limited(rpm=LIMIT), info, now, 0)
    acquired = routing.acquire(PID, now, LIMIT, None, 0, force=True)

    assert (acquired != ACQUIRE_OK) is refused
    assert bool(reason) is refused, (info.rpm_used, reason)


def test_a_token_limit_follows_the_same_rule() -> None:
    routing = LocalRouting()
    now = (1_000_000 + 0.01) * window()
    routing.counts[window_keys("p", PID, now)[3]] = 1_000  # the previous window's tokens
    info = routing.read_view(now, "m", {PID: [0]}, round_robin=False, consume=False).instances[PID]
    candidate = limited(tpm=1_000)
    # 990 used of 1,000: a 5-token request fits, a 20-token one does not.
    assert _skip_reason(candidate, info, now, 5) == ""
    assert "tokens per minute" in _skip_reason(candidate, info, now, 20)
    assert routing.acquire(PID, now, None, 1_000, 20, force=True) != ACQUIRE_OK
