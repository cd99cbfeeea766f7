"""The ASGI lifespan of the /v1 front: startup builds what requests need, then freezes the heap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.proxy import context
from gateway.proxy.app import GatewayApp
from gateway.routing.holder import route_tables
from tests.factories import make_mapping, make_provider, make_vkey
from tests.proxy.conftest import not_django


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # give the rest of the test session its garbage collector back
    route_tables.reset()


async def run_lifespan(
    at_startup: Callable[[], None] | None = None,
    at_shutdown: Callable[[], None] | None = None,
) -> tuple[list[str], int, Any]:
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
            if at_startup is not None:
                at_startup()
            await inbox.put({"type": "lifespan.shutdown"})
        elif message["type"] == "lifespan.shutdown.complete" and at_shutdown is not None:
            at_shutdown()

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


@pytest.mark.django_db(transaction=True)
def test_shutdown_waits_for_work_left_after_the_responses(unfrozen: None) -> None:
    # A finished stream leaves its instance release (and its body's tail) to a task: the
    # process must not stop before it ran, or the instance stays counted as busy.
    make_mapping("chat", make_provider("inst", "mock"))
    ran: list[str] = []
    seen_at_shutdown: list[list[str]] = []

    async def release() -> None:
        await asyncio.sleep(0.2)
        ran.append("released")

    asyncio.run(
        run_lifespan(
            at_startup=lambda: context.run_later(release()),
            at_shutdown=lambda: seen_at_shutdown.append(list(ran)),
        )
    )
    assert seen_at_shutdown == [["released"]]


@pytest.mark.django_db(transaction=True)
def test_shutdown_ignores_work_left_on_a_loop_that_is_gone(unfrozen: None) -> None:
    # The set of pending work is per process. A loop closed before its tasks' done callbacks
    # ran (an earlier test's, say) leaves finished tasks in it, and unstarted ones that never
    # finish: this loop's shutdown must neither fail on them nor wait for them.
    gone = asyncio.new_event_loop()
    finished = gone.create_task(asyncio.sleep(0))
    gone.run_until_complete(finished)
    never = gone.create_task(asyncio.sleep(60))
    gone.close()
    left: set[asyncio.Task[None]] = {finished, never}
    context._background.update(left)
    try:
        sent, _, _ = asyncio.run(run_lifespan())
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    finally:
        context._background.difference_update(left)
        # Never started, on purpose: no "never awaited" or "destroyed pending" noise.
        never.get_coro().close()  # type: ignore[union-attr]
        never._log_destroy_pending = False  # type: ignore[attr-defined]
