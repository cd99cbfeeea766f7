"""Real Redis topologies for tests: a 3-master cluster and a master + replica watched by one
Sentinel, as ``redis-server`` processes on ports 7100-7199 in temp directories, killed at
teardown. Skipped (or failed under CI) without the binaries."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

READY_TIMEOUT = 20.0


def wait_for(ready: Callable[[], object], what: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``ready`` until true (bounded: a stuck server fails the test, not hangs it)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)


def binaries() -> tuple[str, str]:
    from tests.conftest import missing_service  # tests/conftest.py imports these fixtures

    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        missing_service("redis-server and redis-cli (apt-get install redis-server)")
    assert server is not None and cli is not None
    return server, cli


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@dataclass
class Servers:
    """redis-server processes by port, each in its own directory under ``workdir``."""

    workdir: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *extra: str, config: str | None = None) -> None:
        server, _ = binaries()
        home = self.workdir / str(port)
        home.mkdir(parents=True, exist_ok=True)
        args = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home)]
        if config is None:
            # AOF on, so a killed and restarted node keeps what it acknowledged: Redis writes
            # the AOF before it replies, and a killed process's writes stay in the page cache.
            # No fsync: the tests kill processes, not machines, and "always" made each write
            # wait on the disk: under a loaded suite a reply took over the client's 0.5 s
            # timeout and the gateway fell back to local state.
            args += ["--save", "", "--appendonly", "yes", "--appendfsync", "no", *extra]
        else:  # a Sentinel: its configuration file first (it rewrites it), no persistence
            path = home / "sentinel.conf"
            path.write_text(config)
            args = [server, str(path), "--sentinel", *args[1:], *extra]
        log = (home / "log").open("ab")
        self.processes[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: _answers(port), f"redis-server on {port}")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        """Kill every server and remove their directories (teardown)."""
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Cluster:
    """Three masters (and ``replicas`` replicas of each: a cluster that can fail over), slots
    split by ``redis-cli --cluster create``."""

    servers: Servers
    ports: tuple[int, ...] = (7100, 7101, 7102)
    replicas: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        _, cli = binaries()
        for port in self.ports:
            self.servers.start(
                port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000",
            )  # fmt: skip
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        done = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas),
             "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(self.healthy, "cluster_state:ok on every node")
        if self.replicas:
            wait_for(self._replicas_synced, "every replica's first sync")

    def master_of(self, key: str) -> tuple[int, list[int]]:
        """The port of the master serving ``key``'s slot now, and its replicas' ports."""
        client = redis.Redis(port=next(iter(self.servers.processes)), socket_timeout=1)
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *replicas in client.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(master[1]), [int(r[1]) for r in replicas]
        raise AssertionError(f"slot {slot} is not served")

    def _replicas_synced(self) -> bool:
        for port in self.ports:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def healthy(self) -> bool:
        for port in self.servers.processes:  # the live nodes
            try:
                info = redis.Redis(port=port, socket_timeout=0.5).cluster("INFO")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok":
                return False
        return True

    def drop_slot(self, slot: int) -> None:
        """Unassign ``slot`` on every node: the cluster now misses a slot."""
        for port in self.ports:
            redis.Redis(port=port).execute_command("CLUSTER", "DELSLOTS", slot)

    def add_slot(self, slot: int) -> None:
        redis.Redis(port=self.ports[0]).execute_command("CLUSTER", "ADDSLOTS", slot)


@dataclass
class SentinelSet:
    """A master, its replica and one Sentinel (quorum 1, fast failover)."""

    servers: Servers
    master_port: int = 7120
    replica_port: int = 7121
    sentinel_port: int = 7125
    name: str = "gwmaster"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.name}/0"

    def start(self) -> None:
        # No 5 s wait before the first (diskless) sync: the replica is a copy from the start.
        self.servers.start(self.master_port, "--repl-diskless-sync-delay", "0")
        self.servers.start(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        config = (
            f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 500\n"
            f"sentinel failover-timeout {self.name} 2000\n"
            f"sentinel parallel-syncs {self.name} 1\n"
        )
        self.servers.start(self.sentinel_port, config=config)
        wait_for(self._replica_synced, "the replica's first sync")
        wait_for(self._replica_known, "the Sentinel to see the replica")

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, socket_timeout=1)

    def master_address(self) -> tuple[str, int] | None:
        found = self.sentinel().sentinel_get_master_addr_by_name(self.name)
        if not found:
            return None
        host = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
        return host, int(found[1])

    def _replica_synced(self) -> bool:
        info = redis.Redis(port=self.replica_port, socket_timeout=1).info("replication")
        return bool(info.get("master_link_status") == "up")

    def _replica_known(self) -> bool:
        return bool(self.sentinel().sentinel_slaves(self.name))
