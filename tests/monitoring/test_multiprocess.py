"""``serve --workers 2``: /metrics sums every worker's counters (prometheus multiprocess mode)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.usage.models import UsageRecord
from tests.e2e.conftest import start_gateway
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
    server = start_gateway(
        tmp_path / "serve.log",
        workers=2,
        GATEWAY_STATE_DIR=str(tmp_path / "state"),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        GATEWAY_USAGE_FLUSH_SECONDS="0.05",
        GATEWAY_USAGE_QUEUE="",  # the default: the in-process database writer
    )
    url = server.url
    try:
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
        server.stop()
