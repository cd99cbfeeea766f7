"""The circuit breaker state machine, per process and through Redis (providers.state)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from providers import state
from providers.redis_conn import reset_clients
from providers.state import CircuitState


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    state.local_state_clear()
    yield
    state.local_state_clear()


@pytest.fixture(params=["local", "redis"])
def world(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("with_redis")
    return str(request.param)


def test_opens_after_threshold_then_one_trial_then_closes(world: str) -> None:
    async def scenario() -> None:
        for _ in range(2):
            assert (
                await state.circuit_record_failure(7, failure_threshold=3, recovery_timeout=30)
                == CircuitState.CLOSED
            )
        assert await state.circuit_allow(7)
        opened = await state.circuit_record_failure(7, failure_threshold=3, recovery_timeout=30)
        assert opened == CircuitState.OPEN
        assert not await state.circuit_allow(7)
        info = (await state.circuit_info_all([7]))[7]
        assert info.state == CircuitState.OPEN and info.failure_count == 3
        assert info.retry_at is not None and info.opened_at is not None
        later = info.retry_at + 0.01
        # Exactly one trial, however many ask at once.
        allowed = await asyncio.gather(*(state.circuit_allow(7, now=later) for _ in range(10)))
        assert sum(allowed) == 1
        assert (await state.circuit_info_all([7]))[7].state == CircuitState.HALF_OPEN
        await state.circuit_record_success(7)
        info = (await state.circuit_info_all([7]))[7]
        assert info.state == CircuitState.CLOSED and info.failure_count == 0
        assert info.last_success is not None
        reset_clients()

    asyncio.run(scenario())


def test_failed_trial_reopens(world: str) -> None:
    async def scenario() -> None:
        await state.circuit_record_failure(1, failure_threshold=1, recovery_timeout=5)
        info = (await state.circuit_info_all([1]))[1]
        assert info.retry_at is not None
        assert await state.circuit_allow(1, now=info.retry_at + 1)
        assert (
            await state.circuit_record_failure(1, failure_threshold=1, recovery_timeout=5)
            == CircuitState.OPEN
        )
        assert not await state.circuit_allow(1)
        reset_clients()

    asyncio.run(scenario())


def test_probe_sync_twins(world: str) -> None:
    assert state.circuit_record_probe_sync(
        3, ok=False, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.CLOSED)
    assert state.circuit_record_probe_sync(
        3, ok=False, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.OPEN)
    assert state.circuit_info_all_sync([3])[3].state == CircuitState.OPEN
    # A good probe of an open instance: half-open, the next request is the trial.
    assert state.circuit_record_probe_sync(
        3, ok=True, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.HALF_OPEN)
    assert asyncio.run(_allow_and_reset(3, time.time()))
    state.circuit_reset_sync(3)
    assert state.circuit_info_all_sync([3])[3].state == CircuitState.CLOSED
    # A good probe of a closed instance keeps it closed and resets the count.
    state.circuit_record_probe_sync(4, ok=False, failure_threshold=3, recovery_timeout=60)
    assert state.circuit_record_probe_sync(
        4, ok=True, failure_threshold=3, recovery_timeout=60
    ) == (CircuitState.CLOSED)
    assert state.circuit_info_all_sync([4])[4].failure_count == 0


async def _allow_and_reset(pid: int, now: float) -> bool:
    try:
        return await state.circuit_allow(pid, now=now)
    finally:
        reset_clients()


def test_redis_down_falls_back_to_local(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    reset_clients()

    async def scenario() -> None:
        await state.circuit_record_failure(9, failure_threshold=1, recovery_timeout=60)
        assert not await state.circuit_allow(9)
        assert (await state.circuit_info_all([9]))[9].state == CircuitState.OPEN
        reset_clients()

    asyncio.run(scenario())
