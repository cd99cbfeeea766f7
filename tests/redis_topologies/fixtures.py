"""Session fixtures: a real 3-master Redis Cluster and a Sentinel-watched master + replica, and
``in_topology`` to point this process's gateway settings at one of them (the routing tests'
extra worlds, the topology tests). Import them into a conftest to use them."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import redis.cluster

from providers.redis_conn import reset_clients
from tests.redis_topologies.services import Cluster, SentinelSet, Servers

Topology = TypeVar("Topology", Cluster, SentinelSet)


@contextmanager
def running(name: str, build: Callable[[Servers], Topology]) -> Iterator[Topology]:
    """The topology ``build`` makes on servers in a fresh temp directory, started; every
    server killed and the directory removed afterwards."""
    servers = Servers(Path(tempfile.mkdtemp(prefix=f"gw-redis-{name}-")))
    topology = build(servers)
    try:
        topology.start()
        yield topology
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    with running("cluster", Cluster) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSet]:
    with running("sentinel", SentinelSet) as sentinel:
        yield sentinel


def own_sentinel(name: str, port: int) -> AbstractContextManager[SentinelSet]:
    """A master + replica + Sentinel of one test's own (ports ``port``, +1 and +5), for a
    test that kills the master; all stopped afterwards."""
    return running(
        name,
        lambda servers: SentinelSet(
            servers, master_port=port, replica_port=port + 1, sentinel_port=port + 5, name=name
        ),
    )


def own_cluster(name: str, first_port: int) -> AbstractContextManager[Cluster]:
    """Three masters with a replica each, on ports ``first_port`` to ``first_port + 5``, for a
    test that kills a master; all stopped afterwards."""
    ports = tuple(range(first_port, first_port + 6))
    return running(name, lambda servers: Cluster(servers, ports=ports, replicas=1))


def flush(kind: str, url: str) -> None:
    """Empty every master of the topology."""
    if kind == "cluster":
        client: Any = redis.cluster.RedisCluster.from_url(url)
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    else:
        from providers.redis_conn import build_sync_client
        from providers.redis_topology import redis_topology

        topo = redis_topology(url, cluster=False)
        assert topo is not None
        client = build_sync_client(topo)
        client.flushdb()
    client.close()


def topology_env(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment a gateway process needs for topology ``kind``."""
    if kind == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        return {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1", "CELERY_BROKER_URL": ""}
    sentinel: SentinelSet = request.getfixturevalue("redis_sentinel")
    return {"REDIS_URL": sentinel.url, "REDIS_CLUSTER": "0"}


class _Fallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def use_topology(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Point this process's settings at topology ``kind`` (emptied now and at teardown)."""
    env = topology_env(kind, request)
    settings = request.getfixturevalue("settings")
    settings.REDIS_URL = env["REDIS_URL"]
    settings.REDIS_CLUSTER = env["REDIS_CLUSTER"] == "1"
    flush(kind, env["REDIS_URL"])
    reset_clients()
    # A Redis error makes the gateway fall back to per-process state, which would pass most
    # tests unnoticed: any fallback fails the test's teardown.
    fallbacks = _Fallbacks()
    logging.getLogger("providers.circuit.shared").addHandler(fallbacks)

    def done() -> None:
        logging.getLogger("providers.circuit.shared").removeHandler(fallbacks)
        reset_clients()
        flush(kind, env["REDIS_URL"])
        assert not fallbacks.seen, f"fell back to local state in {kind}: {fallbacks.seen}"

    request.addfinalizer(done)
    return env
