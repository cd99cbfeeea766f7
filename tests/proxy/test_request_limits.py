"""The request body limit (``GATEWAY_MAX_BODY_BYTES``): 413 in the OpenAI error shape, whether
the client declares the size or streams the body, and never buffered for an unknown caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.routing.table import RouteTable
from tests.factories import make_mapping, make_provider, make_vkey
from tests.proxy.conftest import InProcessGateway

LIMIT = 2048


@pytest.fixture
def key(install_table: Callable[[], RouteTable], settings: Any) -> str:
    settings.GATEWAY_MAX_BODY_BYTES = LIMIT
    make_mapping("m", make_provider("mock", "mock"))
    _, key = make_vkey()
    install_table()
    return key


def body_of(size: int) -> bytes:
    base = {"model": "m", "messages": [{"role": "user", "content": ""}]}
    padding = size - len(orjson.dumps(base))
    base["messages"][0]["content"] = "x" * padding
    raw = orjson.dumps(base)
    assert len(raw) == size
    return raw


def call_raw(
    gateway: InProcessGateway, key: str | None, chunks: list[bytes], *, declare: bool
) -> tuple[int, dict, int]:
    """Call the ASGI app directly; returns (status, JSON body, body messages consumed)."""
    headers = [(b"content-type", b"application/json")]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    if declare:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    pending = list(chunks)
    consumed = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal consumed
        if not pending:
            return {"type": "http.disconnect"}
        consumed += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict) -> None:
        sent.append(message)

    gateway.loop.run_until_complete(gateway.app(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, orjson.loads(body), consumed


def split(raw: bytes, n: int) -> list[bytes]:
    size = len(raw) // n + 1
    return [raw[i : i + size] for i in range(0, len(raw), size)]


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "streamed"])
def test_body_over_the_limit_is_413(key: str, gateway: InProcessGateway, declare: bool) -> None:
    status, body, _ = call_raw(gateway, key, split(body_of(LIMIT + 1), 4), declare=declare)
    assert status == 413
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "request_too_large"


def test_body_at_the_limit_is_served(key: str, gateway: InProcessGateway) -> None:
    status, body, _ = call_raw(gateway, key, split(body_of(LIMIT), 4), declare=False)
    assert status == 200 and body["object"] == "chat.completion"


def test_declared_oversize_is_refused_before_reading(key: str, gateway: InProcessGateway) -> None:
    status, _, consumed = call_raw(gateway, key, split(body_of(LIMIT * 4), 4), declare=True)
    assert status == 413 and consumed == 0


def test_unknown_caller_body_is_not_read(key: str, gateway: InProcessGateway) -> None:
    status, body, consumed = call_raw(gateway, None, split(body_of(LIMIT * 4), 4), declare=False)
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    assert consumed == 0
