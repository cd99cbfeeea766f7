"""Cold start with the database down: a real ``serve`` process whose database refuses
connections answers ``/v1/*`` 503 in the caller's format with ``Retry-After`` and ``/health``
503 JSON (never an HTML 500); ``/health/live`` still says the process is up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, start_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture
def no_database(tmp_path: Path) -> Iterator[str]:
    server = start_gateway(
        tmp_path / "serve.log",
        ready=("/health/live", 200),  # the model list needs the database this one lacks
        # Nothing listens there: every connection attempt is refused at once.
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/gw_down",
        GATEWAY_STATE_DIR=str(tmp_path / "state"),
    )
    try:
        yield server.url
    finally:
        server.stop()


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
