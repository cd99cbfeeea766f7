"""Bad Redis settings stop startup with the setting's name; a Sentinel with no reachable master
and a cluster missing slots make ``/health/ready`` answer 503 with the reason, and 200 again
once healed (real redis-server processes, see services.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from providers.redis_conn import reset_clients
from providers.redis_topology import redis_topology
from tests.redis_topologies.fixtures import use_topology
from tests.redis_topologies.services import Cluster, SentinelSet, wait_for

SLOT = 4242


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "memcached://127.0.0.1:11211"}, "REDIS_URL: unsupported scheme"),
        ({"REDIS_URL": "redis+sentinel://127.0.0.1:26379"}, "needs the master's name"),
        ({"REDIS_SENTINELS": "127.0.0.1:26379"}, "REDIS_SENTINEL_MASTER is empty"),
        ({"REDIS_URL": "redis://127.0.0.1:7100/0", "REDIS_CLUSTER": "1"}, "CELERY_BROKER_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:7100/3", "REDIS_CLUSTER": "1"}, "only database 0"),
    ],
)
def test_bad_settings_stop_startup_naming_the_setting(env: dict[str, str], message: str) -> None:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    run_env.pop("CELERY_BROKER_URL", None)
    run_env.update({"DEBUG": "1", **env})
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR, env=run_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-2000:]


def test_parse_errors_never_repeat_the_password() -> None:
    with pytest.raises(ImproperlyConfigured) as bad:
        redis_topology("redis+sentinel://:hunter2-pw@127.0.0.1/m", cluster=False)
    assert "REDIS_URL" in str(bad.value) and "hunter2-pw" not in str(bad.value)
    topo = redis_topology("redis+sentinel://u:p%40ss@a:1,b:2/mymaster/3", cluster=False)
    assert topo is not None
    assert (topo.mode, topo.sentinels, topo.master, topo.db) == (
        "sentinel", (("a", 1), ("b", 2)), "mymaster", 3,
    )  # fmt: skip
    assert (topo.username, topo.password) == ("u", "p@ss")


def ready() -> tuple[int, dict[str, Any]]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_sentinel_without_a_reachable_master_is_not_ready(
    redis_sentinel: SentinelSet, settings: Any
) -> None:
    settings.REDIS_URL = f"redis+sentinel://127.0.0.1:{redis_sentinel.sentinel_port}/nosuch/0"
    settings.REDIS_CLUSTER = False
    reset_clients()
    status, body = ready()
    assert status == 503
    assert body["checks"]["redis"] == "error: no reachable master for Sentinel service 'nosuch'"
    settings.REDIS_URL = redis_sentinel.url
    reset_clients()
    assert ready() == (200, {"status": "ready", "checks": {"database": "ok", "redis": "ok"}})
    reset_clients()


@pytest.mark.django_db
def test_cluster_missing_a_slot_is_not_ready_until_healed(
    redis_cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    use_topology("cluster", request)
    assert ready()[0] == 200
    redis_cluster.drop_slot(SLOT)
    try:
        wait_for(lambda: ready()[0] == 503, "readiness to see the missing slot")
        reason = ready()[1]["checks"]["redis"]
        assert reason.startswith("error: cluster_state fail, 16383/16384 slots assigned"), reason
    finally:
        redis_cluster.add_slot(SLOT)
    wait_for(lambda: ready()[0] == 200, "readiness once the slot is served again")
    wait_for(redis_cluster.healthy, "the cluster to heal")
