"""A Redis master is SIGKILLed under traffic, watched by a Sentinel or in a cluster with
replicas: the gateway keeps answering, and every request answered 2xx has exactly one usage
record (the producer's spool re-sends what the dead master never confirmed). With Sentinel,
``/health/ready`` says 503 (naming the reason) until the replica is promoted, then 200."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GatewayServer, World
from tests.fakes.upstream import FakeUpstream
from tests.redis_topologies.fixtures import flush, own_cluster, own_sentinel
from tests.redis_topologies.helpers import Answers, drain_until_recorded, gateway_env
from tests.redis_topologies.services import Cluster, SentinelSet, wait_for

pytestmark = pytest.mark.e2e

CLIENTS = 3


@dataclass
class Traffic:
    """``CLIENTS`` threads sending chat requests to ``server`` until the block ends; what was
    answered and every 5xx seen."""

    server: GatewayServer
    key: str
    answers: Answers = field(default_factory=Answers)
    server_errors: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _client(self) -> None:
        while not self._stop.is_set():
            local = Answers()
            try:
                local.send(self.server, self.key)
            except httpx.TransportError:
                continue
            with self._lock:
                self.answers.ok += local.ok
                self.server_errors.extend(s for s in local.statuses if s >= 500)

    def wait_for_more(self, n: int, what: str) -> None:
        start = len(self.answers.ok)
        wait_for(lambda: len(self.answers.ok) >= start + n, what)

    def assert_all_recorded_once(self) -> None:
        """No 5xx, and one usage record per answered request (drained in this process)."""
        assert self.server_errors == []
        ok = self.answers.ok
        recorded = drain_until_recorded(ok)
        missing = set(ok) - set(recorded)
        assert not missing, f"{len(missing)} of {len(ok)} answered requests unrecorded"
        assert set(recorded.values()) == {1}


def ready(server: GatewayServer) -> int:
    return httpx.get(server.url + "/health/ready", timeout=5).status_code


#: Start a gateway process on a topology: ``(kind, environment) -> (server, key, world)``.
OnTopology = Callable[[str, dict[str, str]], tuple[GatewayServer, str, World]]


@pytest.fixture
def on_topology(
    settings: Any,
    transactional_db: None,
    fake_upstream: FakeUpstream,
    gateway_factory: Callable[..., GatewayServer],
    tmp_path: Path,
) -> OnTopology:
    """Point this process's settings and a new gateway process at a topology (emptied first),
    with alias ``m`` on one instance and a key for it."""
    from providers.redis_conn import reset_clients

    def start(kind: str, topology: dict[str, str]) -> tuple[GatewayServer, str, World]:
        settings.REDIS_URL, settings.REDIS_CLUSTER = topology["REDIS_URL"], kind == "cluster"
        reset_clients()
        flush(kind, topology["REDIS_URL"])
        world = World(server=None, fake=fake_upstream)  # type: ignore[arg-type]
        world.mapping("m", world.provider(f"failover-{kind}"))
        key = world.vkey()
        server = gateway_factory(**gateway_env(topology, tmp_path / "state"))
        world.publish(server)
        return server, key, world

    return start


@pytest.fixture
def private_sentinel() -> Iterator[SentinelSet]:
    """A master + replica + Sentinel of this test's own (it kills the master)."""
    with own_sentinel("gwfail", 7130) as sentinel:
        yield sentinel


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    """Three masters with a replica each, of this test's own (it kills a master)."""
    with own_cluster("gwclusterfail", 7160) as cluster:
        yield cluster


def test_master_killed_mid_traffic_loses_no_usage(
    private_sentinel: SentinelSet, on_topology: OnTopology
) -> None:
    sentinel = private_sentinel
    topology = {"REDIS_URL": sentinel.url, "REDIS_CLUSTER": "0"}
    server, key, world = on_topology("sentinel", topology)

    with Traffic(server, key) as traffic:
        wait_for(lambda: len(traffic.answers.ok) >= 20, "20 answers before the failover")
        assert ready(server) == 200
        sentinel.servers.kill(sentinel.master_port)
        wait_for(lambda: ready(server) == 503, "/health/ready to notice the dead master")
        body = httpx.get(server.url + "/health/ready", timeout=5).json()
        assert body["checks"]["redis"].startswith("error"), body
        wait_for(
            lambda: sentinel.master_address() == ("127.0.0.1", sentinel.replica_port),
            "the Sentinel to promote the replica",
        )
        wait_for(lambda: ready(server) == 200, "/health/ready back on the new master")
        traffic.wait_for_more(20, "20 answers after the failover")
    world.close()
    traffic.assert_all_recorded_once()


def test_cluster_master_killed_mid_traffic_loses_no_usage(
    private_cluster: Cluster, on_topology: OnTopology, settings: Any
) -> None:
    cluster = private_cluster
    topology = {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1", "CELERY_BROKER_URL": ""}
    server, key, world = on_topology("cluster", topology)

    # The master holding the usage stream: the events in flight are the ones at risk.
    master, replicas = cluster.master_of(settings.GATEWAY_USAGE_STREAM)
    assert replicas, "the stream's master has no replica to promote"
    with Traffic(server, key) as traffic:
        wait_for(lambda: len(traffic.answers.ok) >= 20, "20 answers before the failover")
        assert ready(server) == 200
        cluster.servers.kill(master)
        wait_for(
            lambda: cluster.master_of(settings.GATEWAY_USAGE_STREAM)[0] in replicas,
            "the cluster to promote the stream master's replica",
        )
        wait_for(cluster.healthy, "cluster_state:ok on the live nodes")
        wait_for(lambda: ready(server) == 200, "/health/ready on the promoted master")
        traffic.wait_for_more(20, "20 answers after the failover")
    world.close()
    traffic.assert_all_recorded_once()
