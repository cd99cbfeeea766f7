"""A real Celery worker on a Sentinel-watched Redis.

The worker gets only ``REDIS_URL=redis+sentinel://...`` (no ``CELERY_BROKER_URL``): its broker
is derived from it (kombu's ``sentinel://`` URLs with the ``master_name`` option). It runs the
usage drain sent through that broker and records what the gateway appended to the stream on
the same Sentinel; after the master is SIGKILLed and the replica promoted it reconnects, and the
drains sent after the failover record the requests answered after it. Nothing in this process
drains: every record is the worker's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings as django_settings

from tests.e2e.conftest import GatewayServer, World, subprocess_database_url
from tests.fakes.upstream import FakeUpstream
from tests.redis_topologies.fixtures import flush, own_sentinel
from tests.redis_topologies.helpers import Answers, gateway_env, until_recorded
from tests.redis_topologies.services import SentinelSet, wait_for

pytestmark = pytest.mark.e2e

BASE_DIR = Path(__file__).resolve().parents[2]
RECORD_TIMEOUT = 60.0  # a worker process, polling its broker, records them


@pytest.fixture
def private_sentinel() -> Iterator[SentinelSet]:
    """A master + replica + Sentinel of this test's own (it kills the master)."""
    with own_sentinel("gwcelery", 7140) as sentinel:
        yield sentinel


@pytest.fixture
def celery_worker(
    private_sentinel: SentinelSet, django_db_setup: None, tmp_path: Path
) -> Iterator[Path]:
    """``celery -A gateway worker`` on the Sentinel, against the test database; its log."""
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": private_sentinel.url,
        "REDIS_CLUSTER": "0",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(django_settings.FIELD_ENCRYPTION_KEYS),
        "GATEWAY_STATE_DIR": str(tmp_path / "worker-state"),
        "GATEWAY_USAGE_DRAIN_SECONDS": "2",
        "GATEWAY_USAGE_CLAIM_IDLE_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)  # derived from REDIS_URL, which is what is under test
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gateway", "worker", "--pool=solo",
             "-c", "1", "--without-gossip", "--without-mingle", "--loglevel=INFO",
             f"--hostname=sentinel-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield log
    finally:
        worker.kill()
        worker.wait(10)


def derived_broker(sentinel: SentinelSet, monkeypatch: pytest.MonkeyPatch) -> Celery:
    """A producer on the broker the worker derived: the same settings, read the same way."""
    from gateway.redis_env import redis_settings

    monkeypatch.setenv("REDIS_URL", sentinel.url)
    monkeypatch.setenv("REDIS_CLUSTER", "0")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    derived = redis_settings()
    assert derived.broker_url.startswith("sentinel://127.0.0.1:"), derived.broker_url
    assert derived.broker_options == {"master_name": sentinel.name}
    # Not the current app: tasks sent later in this session (by other tests) must not go to
    # this test's Sentinel, which is gone by then.
    return Celery(
        broker=derived.broker_url,
        broker_transport_options=dict(derived.broker_options),
        set_as_current=False,
    )


def drain_ticks(app: Celery, stop: threading.Event) -> None:
    """Send the usage drain through the broker every half second (beat's job, faster)."""
    while not stop.wait(0.5):
        with contextlib.suppress(Exception):  # no master during the failover: next tick
            app.send_task("gateway.usage_drain")


def test_worker_drains_through_the_derived_broker_across_a_failover(
    private_sentinel: SentinelSet,
    celery_worker: Path,
    transactional_db: None,
    fake_upstream: FakeUpstream,
    gateway_factory: Callable[..., GatewayServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    from providers.redis_conn import reset_clients

    sentinel = private_sentinel
    settings.REDIS_URL, settings.REDIS_CLUSTER = sentinel.url, False  # publish() uses it
    reset_clients()
    flush("sentinel", sentinel.url)
    world = World(server=None, fake=fake_upstream)  # type: ignore[arg-type]
    world.mapping("m", world.provider("celery-sentinel"))
    key = world.vkey()
    topology = {"REDIS_URL": sentinel.url, "REDIS_CLUSTER": "0"}
    server = gateway_factory(**gateway_env(topology, tmp_path / "state"))
    world.publish(server)
    app = derived_broker(sentinel, monkeypatch)
    stop = threading.Event()
    ticker = threading.Thread(target=drain_ticks, args=(app, stop))
    ticker.start()
    try:
        before = Answers()
        for _ in range(10):
            assert before.send(server, key).status_code == 200
        found = until_recorded(before.ok, timeout=RECORD_TIMEOUT)
        assert set(found) == set(before.ok), celery_worker.read_text()[-3000:]

        sentinel.servers.kill(sentinel.master_port)
        wait_for(
            lambda: sentinel.master_address() == ("127.0.0.1", sentinel.replica_port),
            "the Sentinel to promote the replica",
        )
        after = Answers()
        for _ in range(10):
            after.send(server, key)
        assert after.statuses == [200] * 10
        found = until_recorded(before.ok + after.ok, timeout=RECORD_TIMEOUT)
    finally:
        stop.set()
        ticker.join(10)
        app.close()
        world.close()
    missing = set(after.ok) - set(found)
    assert not missing, (
        f"{len(missing)} answered after the failover unrecorded: "
        + (celery_worker.read_text()[-3000:])
    )
    assert set(found.values()) == {1}  # none recorded twice
