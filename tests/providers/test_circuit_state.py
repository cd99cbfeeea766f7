"""The circuit breaker state machine, per process and through Redis, driven through the API
the gateway uses: the routing state's acquire/release (requests) and the sync probe functions
(health checks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gateway.routing import state as routing_state
from gateway.routing.state import ACQUIRE_CIRCUIT, ACQUIRE_OK, InstanceView
from providers import circuit
from providers.circuit import CircuitState
from providers.redis_conn import reset_clients


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    routing_state.local_clear()
    yield
    routing_state.local_clear()


@pytest.fixture(params=["local", "redis"])
def world(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("with_redis")
    return str(request.param)


async def acquire(pid: int) -> int:
    """Take the instance for one attempt and keep the lease (the code only)."""
    code, _ = await routing_state.instance_acquire(pid, rpm=None, tpm=None, est_tokens=1)
    return code


async def attempt(pid: int, *, ok: bool, threshold: int, recovery: float) -> None:
    """One attempt on the instance that ends in success or an instance failure."""
    code, lease = await routing_state.instance_acquire(pid, rpm=None, tpm=None, est_tokens=1)
    assert code == ACQUIRE_OK and lease is not None
    await lease.release(ok=ok, failure_threshold=threshold, recovery_timeout=recovery)


async def seen(pid: int) -> InstanceView:
    """The instance as a request's route view sees it (reads only)."""
    view = await routing_state.route_view_read(
        alias="m", provider_groups={pid: ()}, round_robin=False, consume_key=False
    )
    return view.instances[pid]


def wait_until(when: float) -> None:
    while time.time() <= when:
        time.sleep(0.01)


def test_opens_after_threshold_then_one_trial_then_closes(world: str) -> None:
    async def scenario() -> None:
        for _ in range(2):
            await attempt(7, ok=False, threshold=3, recovery=0.3)
            assert (await seen(7)).circuit == CircuitState.CLOSED
        await attempt(7, ok=False, threshold=3, recovery=0.3)
        assert (await seen(7)).circuit == CircuitState.OPEN
        assert await acquire(7) == ACQUIRE_CIRCUIT
        info = circuit.circuit_info_all_sync([7])[7]
        assert info.state == CircuitState.OPEN and info.failure_count == 3
        assert info.retry_at is not None and info.opened_at is not None
        wait_until(info.retry_at)
        # Exactly one trial, however many ask at once.
        codes = await asyncio.gather(
            *(
                routing_state.instance_acquire(7, rpm=None, tpm=None, est_tokens=1)
                for _ in range(10)
            )
        )
        trials = [lease for code, lease in codes if code == ACQUIRE_OK]
        assert len(trials) == 1 and {code for code, _ in codes} == {ACQUIRE_OK, ACQUIRE_CIRCUIT}
        assert (await seen(7)).circuit == CircuitState.HALF_OPEN
        [trial] = trials
        assert trial is not None
        await trial.release(ok=True, failure_threshold=3, recovery_timeout=0.3)
        # A success is queued (sent within the linger); the sync client reads Redis directly.
        await routing_state.releases_flush()
        info = circuit.circuit_info_all_sync([7])[7]
        assert info.state == CircuitState.CLOSED and info.failure_count == 0
        assert info.last_success is not None
        reset_clients()

    asyncio.run(scenario())


def test_failed_trial_reopens(world: str) -> None:
    async def scenario() -> None:
        await attempt(1, ok=False, threshold=1, recovery=0.2)
        retry_at = (await seen(1)).retry_at
        assert retry_at is not None
        wait_until(retry_at)
        await attempt(1, ok=False, threshold=1, recovery=5)  # the trial
        view = await seen(1)
        assert view.circuit == CircuitState.OPEN and (view.retry_at or 0) > retry_at
        assert await acquire(1) == ACQUIRE_CIRCUIT
        reset_clients()

    asyncio.run(scenario())


def test_neither_outcome_leaves_the_circuit_alone(world: str) -> None:
    async def scenario() -> None:
        await attempt(2, ok=False, threshold=2, recovery=60)
        code, lease = await routing_state.instance_acquire(2, rpm=None, tpm=None, est_tokens=1)
        assert code == ACQUIRE_OK and lease is not None
        await lease.release(ok=None, failure_threshold=2, recovery_timeout=60)
        view = await seen(2)
        assert view.circuit == CircuitState.CLOSED and view.failure_count == 1
        reset_clients()

    asyncio.run(scenario())


async def _acquire_and_reset(pid: int) -> int:
    try:
        return await acquire(pid)
    finally:
        reset_clients()


def test_probe_sync_twins(world: str) -> None:
    assert circuit.circuit_record_probe_sync(
        3, ok=False, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.CLOSED)
    assert circuit.circuit_record_probe_sync(
        3, ok=False, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.OPEN)
    assert circuit.circuit_info_all_sync([3])[3].state == CircuitState.OPEN
    assert asyncio.run(_acquire_and_reset(3)) == ACQUIRE_CIRCUIT
    # A good probe of an open instance: half-open, the next request is the trial.
    assert circuit.circuit_record_probe_sync(
        3, ok=True, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.HALF_OPEN)
    info = circuit.circuit_info_all_sync([3])[3]
    assert info.state == CircuitState.HALF_OPEN and info.last_success is not None
    assert asyncio.run(_acquire_and_reset(3)) == ACQUIRE_OK
    assert asyncio.run(_acquire_and_reset(3)) == ACQUIRE_CIRCUIT  # one trial only
    # A good probe of a half-open instance leaves the decision to the trial.
    assert circuit.circuit_record_probe_sync(
        3, ok=True, failure_threshold=2, recovery_timeout=60
    ) == (CircuitState.HALF_OPEN)
    circuit.circuit_reset_sync(3)
    assert circuit.circuit_info_all_sync([3])[3].state == CircuitState.CLOSED
    # A good probe of a closed instance keeps it closed and resets the count.
    circuit.circuit_record_probe_sync(4, ok=False, failure_threshold=3, recovery_timeout=60)
    assert circuit.circuit_info_all_sync([4])[4].failure_count == 1
    assert circuit.circuit_record_probe_sync(
        4, ok=True, failure_threshold=3, recovery_timeout=60
    ) == (CircuitState.CLOSED)
    assert circuit.circuit_info_all_sync([4])[4].failure_count == 0


def test_redis_down_falls_back_to_local(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    reset_clients()

    async def scenario() -> None:
        await attempt(9, ok=False, threshold=1, recovery=60)
        assert not circuit.redis_usable()
        assert await acquire(9) == ACQUIRE_CIRCUIT
        assert (await seen(9)).circuit == CircuitState.OPEN
        reset_clients()

    asyncio.run(scenario())
    assert circuit.circuit_info_all_sync([9])[9].state == CircuitState.OPEN
