"""``serve --workers 2``: /metrics sums every worker's counters (prometheus multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from gateway.usage.models import UsageRecord
from tests.e2e.conftest import free_port, subprocess_database_url
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.monitoring.test_views import _sample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

N = 12


def test_metrics_sum_across_server_workers(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    inst = make_provider("mp-inst", "openai", upstream_url=fake_upstream.url)
    make_mapping("mp-alias", inst, "fake-gpt")
    _, key = make_vkey()
    multiproc = tmp_path / "prom"
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": "",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "GATEWAY_STATE_DIR": str(tmp_path / "state"),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "GATEWAY_USAGE_FLUSH_SECONDS": "0.05",
        }
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "2"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        body: dict[str, Any] = {"model": "mp-alias", "messages": [{"role": "user", "content": "x"}]}
        for _ in range(N):  # a new connection each: the kernel spreads them over the workers
            r = httpx.post(
                url + "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
        # The in-process writer records the events; wait so none is written after the test.
        deadline = time.monotonic() + 10
        while UsageRecord.objects.count() < N and time.monotonic() < deadline:
            time.sleep(0.05)
        assert UsageRecord.objects.count() == N
        for _ in range(4):  # whichever worker answers the scrape reports every worker's count
            text = httpx.get(url + "/metrics", timeout=5).text
            assert (
                _sample(text, "gateway_requests_total", provider_id=str(inst.id), alias="mp-alias")
                == N
            )
        assert any(p.suffix == ".db" for p in multiproc.iterdir())
        health = httpx.get(url + "/health", timeout=5).json()
        assert health["providers"][str(inst.id)]["name"] == "mp-inst"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
