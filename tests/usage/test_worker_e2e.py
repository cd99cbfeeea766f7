"""A real Celery worker process drains the usage stream into the test database.

Not eager mode: ``celery -A gateway worker --pool=solo`` runs as a subprocess with the test
Redis as broker and the test database (committed rows, ``transactional_db``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from gateway.celery import app
from gateway.usage.models import UsageRecord
from gateway.usage.queues import RedisStreamUsageQueue
from gateway.usage.tasks import usage_drain_task
from tests.factories import make_mapping_row, make_mock_provider
from tests.usage.conftest import event, price_target

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subprocess_database_url() -> str:
    """DATABASE_URL of the *test* database, for a process that is not this one."""
    sd = connection.settings_dict
    name = str(sd["NAME"])
    if sd["ENGINE"] == "django.db.backends.sqlite3":
        assert name == str(settings.DATABASES["default"]["TEST"]["NAME"])
        return f"sqlite:///{Path(name).resolve()}"
    assert sd["ENGINE"] == "django.db.backends.postgresql" and name.startswith("test_")
    user = quote(str(sd.get("USER") or ""), safe="")
    password = quote(str(sd.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{sd.get('HOST') or '127.0.0.1'}:{sd.get('PORT') or 5432}/{name}"


@pytest.fixture
def worker(with_redis: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    if app.conf.task_always_eager:
        pytest.skip("Celery is eager in this process (no broker configured at import)")
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": with_redis,
        "CELERY_BROKER_URL": with_redis,
        "GATEWAY_STATE_DIR": str(settings.STATE_DIR),
        "GATEWAY_USAGE_DRAIN_SECONDS": "5",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "gateway",
                "worker",
                "--pool=solo",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                f"--hostname=usage-e2e-{os.getpid()}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode not in (0, -15):
            print(log.read_text())


def test_worker_records_stream_entries(worker: subprocess.Popen[bytes]) -> None:
    provider = make_mock_provider()
    mapping = make_mapping_row(provider)
    price_target(provider, "gpt-4o", "2.5", "10")
    events = [
        event(provider_id=provider.id, mapping_id=mapping.id, provider_model="gpt-4o")
        for _ in range(200)
    ]
    queue = RedisStreamUsageQueue()

    async def produce() -> None:
        for e in events:
            queue.put(e)
        await queue.aclose()

    asyncio.run(produce())
    usage_drain_task.delay()  # what beat sends every 2 s

    deadline = time.monotonic() + 40
    while UsageRecord.objects.count() < len(events):
        assert worker.poll() is None, "the worker died"
        assert time.monotonic() < deadline, f"{UsageRecord.objects.count()} of 200 recorded"
        time.sleep(0.1)
    # The same task delivered again (late ack, worker restart) changes nothing.
    usage_drain_task.delay()
    time.sleep(0.5)
    assert UsageRecord.objects.count() == 200
    assert set(UsageRecord.objects.values_list("cost", flat=True)) == {Decimal("0.0000575")}
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {
        e.request_id for e in events
    }
