"""Cold start with the database down: a real ``serve`` process whose database refuses
connections answers ``/v1/*`` 503 in the caller's format with ``Retry-After`` and ``/health``
503 JSON (never an HTML 500); ``/health/live`` still says the process is up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_database(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            # Nothing listens there: every connection attempt is refused at once.
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gw_down",
            "REDIS_URL": "",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "GATEWAY_STATE_DIR": str(tmp_path / "state"),
            "GATEWAY_USAGE_QUEUE": "gateway.usage.events.InMemoryUsageQueue",
        }
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
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
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_v1_and_health_answer_503_json_with_retry_after(no_database: str) -> None:
    url = no_database
    auth = {"authorization": "Bearer some-key"}
    msg = [{"role": "user", "content": "hi"}]
    chat = httpx.post(
        url + "/v1/chat/completions", json={"model": "m", "messages": msg}, headers=auth
    )
    assert chat.status_code == 503, chat.text
    assert int(chat.headers["retry-after"]) >= 1
    assert chat.json()["error"]["code"] == "service_unavailable"
    messages = httpx.post(
        url + "/v1/messages", json={"model": "m", "max_tokens": 5, "messages": msg}, headers=auth
    )
    assert messages.status_code == 503 and messages.headers["retry-after"]
    assert messages.json()["type"] == "error"
    health = httpx.get(url + "/health", timeout=10)
    assert health.status_code == 503
    assert health.headers["content-type"] == "application/json"
    assert health.headers["retry-after"] and health.json()["status"] == "unavailable"
    ready = httpx.get(url + "/health/ready", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
