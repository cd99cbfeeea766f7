"""Without Redis (demo, one process): the gateway writes usage itself, in batches, off the loop."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from gateway.usage.events import get_usage_queue
from gateway.usage.models import UsageRecord
from gateway.usage.queues import DatabaseUsageQueue
from tests.factories import make_mapping_row, make_mock_provider, make_vkey
from tests.usage.conftest import event, post_chats, price_target

pytestmark = pytest.mark.django_db(transaction=True)


def test_requests_recorded_by_the_in_process_writer(gateway_app: Any) -> None:
    provider = make_mock_provider()
    make_mapping_row(provider)
    price_target(provider, "gpt-4o", "2.5", "10")
    vkey, key = make_vkey()
    queue = get_usage_queue()
    assert isinstance(queue, DatabaseUsageQueue)  # the default without REDIS_URL

    async def run() -> list[Any]:
        responses = await post_chats(gateway_app, key, 40)
        await queue.aclose()  # lifespan shutdown: whatever is buffered is written now
        return responses

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    assert UsageRecord.objects.count() == 40
    assert set(UsageRecord.objects.values_list("cost", flat=True)) == {Decimal("0.0000575")}
    assert set(UsageRecord.objects.values_list("virtual_key_id", flat=True)) == {vkey.id}


def test_background_flush_without_shutdown(settings: Any) -> None:
    settings.GATEWAY_USAGE_FLUSH_SECONDS = 0.01
    queue = DatabaseUsageQueue()

    async def run() -> None:
        for _ in range(10):
            queue.put(event())
        for _ in range(200):  # bounded wait for the flusher
            await asyncio.sleep(0.01)
            if len(queue) == 0 and await asyncio.to_thread(UsageRecord.objects.count) == 10:
                break
        await queue.aclose()

    asyncio.run(run())
    assert UsageRecord.objects.count() == 10


def test_database_failure_spools_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = DatabaseUsageQueue()
    events = [event() for _ in range(7)]
    real = DatabaseUsageQueue.deliver_sync

    def broken(self: DatabaseUsageQueue, payloads: list[bytes]) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(DatabaseUsageQueue, "deliver_sync", broken)

    async def send() -> None:
        for e in events:
            queue.put(e)
        await queue.flush()

    asyncio.run(send())
    assert UsageRecord.objects.count() == 0
    assert queue.spool.size > 0
    monkeypatch.setattr(DatabaseUsageQueue, "deliver_sync", real)
    asyncio.run(queue.aclose())
    assert UsageRecord.objects.count() == 7
    assert queue.spool.size == 0


def test_put_outside_an_event_loop_writes_synchronously() -> None:
    queue = DatabaseUsageQueue()
    queue.put(event())
    assert UsageRecord.objects.count() == 1
