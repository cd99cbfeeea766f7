"""The fuzzed world: one alias per provider path (OpenAI native, OpenAI-compatible, Anthropic
native, the in-process mock), all on the loopback fake, and one virtual key."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.routing.table import RouteTable
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import InProcessGateway


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> str:
    url = fake_upstream.url
    make_mapping("gpt", make_provider("fz-openai", "openai", upstream_url=url))
    make_mapping("compat", make_provider("fz-compat", "openai_compatible", upstream_url=url))
    make_mapping("claude", make_provider("fz-claude", "anthropic", upstream_url=url))
    make_mapping("mock", make_provider("fz-mock", "mock"))
    key = make_vkey("fuzz-app").plaintext
    install_table()
    return key


def send(
    gateway: InProcessGateway,
    path: str,
    key: str,
    content: bytes,
    content_type: str = "application/json",
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "content-type": content_type}

    async def go(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, content=content, headers=headers)

    return gateway.run(go)
