"""Fixtures for the usage pipeline, pricing and budgets: configuration rows, the in-process
ASGI gateway, a second Redis server the test can stop, a loopback webhook receiver.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.celery import app as celery_app
from gateway.routing.holder import route_tables
from gateway.usage.budget_state import budget_state
from gateway.usage.events import UsageEvent, set_usage_queue
from mappings.models import ModelPrice
from providers.models import Provider
from providers.redis_conn import reset_clients
from tests.conftest import free_port, missing_service

# --- configuration rows ----------------------------------------------------------------------


def price_target(
    provider: Provider,
    model: str,
    inp: str,
    out: str,
    cached: str | None = None,
    *,
    effective_from: Any = None,
) -> ModelPrice:
    """A provider instance + provider model price."""
    values: dict[str, Any] = {
        "provider": provider,
        "provider_model_id": model,
        "input_per_million": Decimal(inp),
        "output_per_million": Decimal(out),
        "cached_input_per_million": Decimal(cached) if cached else None,
    }
    if effective_from is not None:
        values["effective_from"] = effective_from
    return ModelPrice.objects.create(**values)


def event(**kwargs: Any) -> UsageEvent:
    """A usage event as the pipeline emits it (fields overridable)."""
    values: dict[str, Any] = {
        "request_id": "gw-" + uuid.uuid4().hex,
        "created_at": time.time(),
        "endpoint": "chat",
        "virtual_key_id": None,
        "model_alias": "gpt-4o",
        "status_code": 200,
        "prompt_tokens": 3,
        "completion_tokens": 5,
    }
    values.update(kwargs)
    return UsageEvent(**values)


# --- the in-process gateway ------------------------------------------------------------------

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}]}
# What the mock provider counts for CHAT: words + 1 per message in, "Mock reply to: hello world".
CHAT_PROMPT_TOKENS = 3
CHAT_COMPLETION_TOKENS = 5


@pytest.fixture
def gateway_app() -> Iterator[Any]:
    """The ASGI app (lean /v1 front + Django) with fresh route table and budget state."""
    from gateway.asgi import application

    route_tables.reset()
    budget_state.reset()
    yield application
    route_tables.reset()
    budget_state.reset()


async def post_chats(
    app: Any, key: str, n: int, body: dict[str, Any] | None = None
) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return list(
            await asyncio.gather(
                *[
                    client.post(
                        "/v1/chat/completions",
                        json=body or CHAT,
                        headers={"authorization": f"Bearer {key}"},
                    )
                    for _ in range(n)
                ]
            )
        )


@pytest.fixture(autouse=True)
def _usage_isolation(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own spool directory and a fresh process-wide queue."""
    settings.STATE_DIR = tmp_path
    settings.GATEWAY_USAGE_RETRY_SECONDS = 0.0
    set_usage_queue(None)
    yield
    set_usage_queue(None)


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks in process (the environment may have a broker configured, no worker)."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


# --- a Redis the test can stop ---------------------------------------------------------------


@dataclass
class RedisServer:
    """A private ``redis-server`` on a free port (no persistence: a restart comes back empty)."""

    exe: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(settings: Any) -> Iterator[RedisServer]:
    """A second Redis the test can stop and restart; the gateway is configured for it."""
    exe = shutil.which("redis-server")
    if exe is None:
        missing_service("redis-server executable (apt-get install redis-server)")
    assert exe is not None
    server = RedisServer(exe, free_port())
    server.start()
    settings.REDIS_URL = server.url
    reset_clients()
    try:
        yield server
    finally:
        server.stop()
        reset_clients()


# --- a webhook receiver ----------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A loopback HTTP server that records every JSON POST it gets."""
    posts: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            posts.append(orjson.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()
