"""The Sentinel-watched master is SIGKILLed under traffic: the gateway keeps answering,
``/health/ready`` says 503 (naming the reason) until the Sentinel has promoted the replica,
then 200, and every request answered 2xx has exactly one usage record (the producer's spool
re-sends what the dead master never confirmed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import GatewayServer, World
from tests.fakes.upstream import FakeUpstream
from tests.redis_topologies.fixtures import flush, own_sentinel
from tests.redis_topologies.helpers import Answers, drain_until_recorded, gateway_env
from tests.redis_topologies.services import SentinelSet, wait_for

pytestmark = pytest.mark.e2e

CLIENTS = 3


@pytest.fixture
def private_sentinel() -> Iterator[SentinelSet]:
    """A master + replica + Sentinel of this test's own (it kills the master)."""
    with own_sentinel("gwfail", 7130) as sentinel:
        yield sentinel


def test_master_killed_mid_traffic_loses_no_usage(
    private_sentinel: SentinelSet,
    settings,  # type: ignore[no-untyped-def]
    transactional_db: None,
    fake_upstream: FakeUpstream,
    gateway_factory: Callable[..., GatewayServer],
    tmp_path: Path,
) -> None:
    from providers.redis_conn import reset_clients

    sentinel = private_sentinel
    settings.REDIS_URL, settings.REDIS_CLUSTER = sentinel.url, False
    reset_clients()
    flush("sentinel", sentinel.url)
    topology = {"REDIS_URL": sentinel.url, "REDIS_CLUSTER": "0"}
    world = World(server=None, fake=fake_upstream)  # type: ignore[arg-type]
    world.mapping("m", world.provider("failover-a"))
    key = world.vkey()
    server = gateway_factory(**gateway_env(topology, tmp_path / "state"))
    world.publish(server)

    answers = Answers()
    lock, stop = threading.Lock(), threading.Event()
    server_errors: list[int] = []

    def client() -> None:
        while not stop.is_set():
            local = Answers()
            try:
                local.send(server, key)
            except httpx.TransportError:
                continue
            with lock:
                answers.ok += local.ok
                server_errors.extend(s for s in local.statuses if s >= 500)

    def ready() -> int:
        return httpx.get(server.url + "/health/ready", timeout=5).status_code

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(answers.ok) >= 20, "20 answers before the failover")
        assert ready() == 200
        sentinel.servers.kill(sentinel.master_port)
        wait_for(lambda: ready() == 503, "/health/ready to notice the dead master")
        body = httpx.get(server.url + "/health/ready", timeout=5).json()
        assert body["checks"]["redis"].startswith("error"), body
        wait_for(
            lambda: sentinel.master_address() == ("127.0.0.1", sentinel.replica_port),
            "the Sentinel to promote the replica",
        )
        wait_for(lambda: ready() == 200, "/health/ready back on the new master")
        healed = len(answers.ok)
        wait_for(lambda: len(answers.ok) >= healed + 20, "20 answers after the failover")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    world.close()

    assert server_errors == []
    recorded = drain_until_recorded(answers.ok)
    missing = set(answers.ok) - set(recorded)
    assert not missing, f"{len(missing)} of {len(answers.ok)} answered requests unrecorded"
    assert set(recorded.values()) == {1}
