"""The ASGI lifespan of the /v1 front: startup builds what requests need, then freezes the heap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.api.asgi_app import GatewayApp
from gateway.routing.holder import route_tables
from tests.gateway.conftest import not_django
from tests.gateway.factories import make_mapping, make_provider, make_vkey


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the rest of the test session its garbage collector back
    route_tables.reset()


async def run_lifespan() -> tuple[list[str], int, Any]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []
    frozen_at_startup = -1
    table = None

    async def send(message: dict[str, Any]) -> None:
        nonlocal frozen_at_startup, table
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            frozen_at_startup = gc.get_freeze_count()
            table = await route_tables.get()
            await inbox.put({"type": "lifespan.shutdown"})

    await inbox.put({"type": "lifespan.startup"})
    await GatewayApp(not_django)({"type": "lifespan"}, inbox.get, send)
    return sent, frozen_at_startup, table


@pytest.mark.django_db(transaction=True)
def test_startup_builds_the_route_table_and_freezes_the_startup_heap(unfrozen: None) -> None:
    make_mapping("chat", make_provider("inst", "mock"))
    make_vkey("app")
    assert gc.get_freeze_count() == 0

    sent, frozen, table = asyncio.run(run_lifespan())

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert table is not None and "chat" in table.aliases
    # Full collections no longer walk the objects alive at startup (Django, the route table):
    # that walk was the p99 at load (see freeze_startup_heap).
    assert frozen > 10_000
