"""The Redis usage stream: N requests -> N priced records, exactly once, whatever happens.

Real Redis throughout (``with_redis``, or a private server the test stops); records are
committed (``transactional_db``) because acknowledgement happens after commit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest
import redis
from django.conf import settings

from gateway.usage import recorder
from gateway.usage.events import get_usage_queue
from gateway.usage.models import UsageRecord
from gateway.usage.queues import RedisStreamUsageQueue
from gateway.usage.recorder import usage_drain, usage_stream_drain
from gateway.usage.spool import Spool, spool_dir
from providers.redis_conn import sync_redis
from tests.factories import make_mapping_row, make_mock_provider, make_vkey
from tests.usage.conftest import (
    CHAT_COMPLETION_TOKENS,
    CHAT_PROMPT_TOKENS,
    RedisServer,
    event,
    post_chats,
    price_target,
)

pytestmark = pytest.mark.django_db(transaction=True)


def stream_len() -> int:
    client = sync_redis()
    assert client is not None
    return int(client.xlen(settings.GATEWAY_USAGE_STREAM))


def pending() -> int:
    client = sync_redis()
    assert client is not None
    info: Any = client.xpending(settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP)
    return int(info["pending"])


def put_all(queue: RedisStreamUsageQueue, events: list[Any]) -> None:
    """Put on a running loop (the flusher's path), then shut down as the lifespan does."""

    async def run() -> None:
        for e in events:
            queue.put(e)
        await queue.aclose()

    asyncio.run(run())


def test_requests_through_gateway_recorded_once_with_cost_per_instance(
    with_redis: str, gateway_app: Any
) -> None:
    # Two instances of the same type serving the same provider model at different prices:
    # each record must carry its own instance's price.
    first, second = make_mock_provider("openai-eu"), make_mock_provider("openai-us")
    make_mapping_row(first, alias="gpt-4o", model="gpt-4o")
    make_mapping_row(second, alias="gpt-4o-us", model="gpt-4o")
    price_target(first, "gpt-4o", "2.5", "10")
    price_target(second, "gpt-4o", "1.1", "4.4")
    vkey, key = make_vkey()
    queue = get_usage_queue()
    assert isinstance(queue, RedisStreamUsageQueue)  # the default when REDIS_URL is set

    async def traffic() -> list[Any]:
        a = await post_chats(gateway_app, key, 30)
        body = {"model": "gpt-4o-us", "messages": [{"role": "user", "content": "hello world"}]}
        b = await post_chats(gateway_app, key, 20, body)
        await queue.aclose()  # what lifespan shutdown does
        return a + b

    responses = asyncio.run(traffic())
    assert [r.status_code for r in responses] == [200] * 50
    assert stream_len() == 50
    assert UsageRecord.objects.count() == 0  # nothing written on the request path

    result = usage_stream_drain(max_seconds=10)
    assert result.recorded == 50
    assert UsageRecord.objects.count() == 50
    assert {r.headers["x-request-id"] for r in responses} == set(
        UsageRecord.objects.values_list("request_id", flat=True)
    )
    cost_first = (CHAT_PROMPT_TOKENS * Decimal("2.5") + CHAT_COMPLETION_TOKENS * 10) / 10**6
    cost_second = (
        CHAT_PROMPT_TOKENS * Decimal("1.1") + CHAT_COMPLETION_TOKENS * Decimal("4.4")
    ) / 10**6
    for provider, n, cost in ((first, 30, cost_first), (second, 20, cost_second)):
        records = UsageRecord.objects.filter(provider=provider)
        assert records.count() == n
        assert {
            (r.prompt_tokens, r.completion_tokens, r.cost, r.virtual_key_id) for r in records
        } == {(CHAT_PROMPT_TOKENS, CHAT_COMPLETION_TOKENS, cost, vkey.id)}
    # Recorded entries are acknowledged and deleted: the stream holds only the backlog.
    assert stream_len() == 0 and pending() == 0


def test_same_batch_delivered_twice_counts_once(with_redis: str) -> None:
    provider = make_mock_provider()
    mapping = make_mapping_row(provider)
    price_target(provider, "gpt-4o", "2.5", "10")
    events = [
        event(provider_id=provider.id, mapping_id=mapping.id, provider_model="gpt-4o")
        for _ in range(25)
    ]
    queue = RedisStreamUsageQueue()
    put_all(queue, events)
    put_all(queue, events)  # the producer re-sent everything (e.g. a spool re-send)
    assert stream_len() == 50
    assert usage_stream_drain(max_seconds=10).read == 50
    assert UsageRecord.objects.count() == 25
    total = sum(UsageRecord.objects.values_list("cost", flat=True), Decimal(0))
    assert total == 25 * (3 * Decimal("2.5") + 5 * 10) / 10**6
    # And the recorder itself, given the same events again, inserts nothing.
    assert recorder.usage_events_record(events=[e.to_dict() for e in events]) == 0
    assert UsageRecord.objects.count() == 25


def test_crash_between_read_and_insert_loses_nothing(
    with_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = RedisStreamUsageQueue()
    put_all(queue, [event() for _ in range(40)])

    def crash(events: list[Any]) -> None:
        raise RuntimeError("worker killed between XREADGROUP and the insert")

    monkeypatch.setattr(recorder, "_before_insert", crash)
    with pytest.raises(RuntimeError):
        usage_stream_drain(consumer="doomed", batch_size=15)
    assert UsageRecord.objects.count() == 0
    assert pending() == 15  # read, never acknowledged

    monkeypatch.setattr(recorder, "_before_insert", None)
    # A consumer that is not the dead one claims its pending entries first, then reads on.
    result = usage_stream_drain(consumer="survivor", claim_idle_seconds=0, max_seconds=10)
    assert result.claimed == 15
    assert result.recorded == 40
    assert UsageRecord.objects.count() == 40
    assert pending() == 0 and stream_len() == 0
    assert usage_stream_drain(claim_idle_seconds=0).recorded == 0


def test_drain_stops_at_the_streams_end_under_steady_traffic(
    with_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traffic goes on while the drain runs (5 events arrive per batch it records): the drain
    stops at the first short read, leaving what came after it to the next run, instead of
    chasing the tail in tiny batches until its time limit."""
    queue = RedisStreamUsageQueue()
    put_all(queue, [event() for _ in range(25)])

    def traffic(events: list[Any]) -> None:
        queue.deliver_sync([orjson.dumps(event()) for _ in range(5)])

    monkeypatch.setattr(recorder, "_before_insert", traffic)
    result = usage_stream_drain(batch_size=10, max_seconds=5)
    # Reads of 10, 10, 10, 10 (the stream refilled by 5 each time), then 5: the end.
    assert result.read == result.recorded == 45
    assert stream_len() == 5 and pending() == 0  # the 5 that came with the last batch

    monkeypatch.setattr(recorder, "_before_insert", None)
    assert usage_stream_drain(max_seconds=5).recorded == 5
    assert UsageRecord.objects.count() == 50 and stream_len() == 0


def test_pending_entries_of_a_live_consumer_are_not_stolen(with_redis: str) -> None:
    client = sync_redis()
    assert client is not None
    put_all(RedisStreamUsageQueue(), [event() for _ in range(5)])
    recorder.usage_group_ensure(client=client)
    client.xreadgroup(
        settings.GATEWAY_USAGE_GROUP, "busy", {settings.GATEWAY_USAGE_STREAM: ">"}, count=5
    )
    # Idle for less than the claim threshold: still someone else's work in progress.
    assert usage_stream_drain(consumer="other", claim_idle_seconds=60).recorded == 0
    assert pending() == 5


def test_unparseable_entry_goes_to_dead_letters(with_redis: str) -> None:
    client = sync_redis()
    assert client is not None
    put_all(RedisStreamUsageQueue(), [event() for _ in range(3)])
    client.xadd(settings.GATEWAY_USAGE_STREAM, {b"e": b"{not json"})
    result = usage_stream_drain(max_seconds=10)
    assert (result.recorded, result.dead) == (3, 1)
    assert client.xlen(settings.GATEWAY_USAGE_STREAM + recorder.DEAD_LETTER_SUFFIX) == 1
    assert pending() == 0


def test_redis_stopped_during_traffic_spools_then_records_after_return(
    private_redis: RedisServer,
) -> None:
    queue = RedisStreamUsageQueue()
    before = [event() for _ in range(10)]
    during = [event() for _ in range(15)]

    async def send(events: list[Any]) -> None:
        for e in events:
            queue.put(e)
        await queue.flush()

    asyncio.run(send(before))
    assert usage_stream_drain(max_seconds=10).recorded == 10

    private_redis.stop()
    asyncio.run(send(during))  # Redis refuses: spooled, fsync'd, the request path unaffected
    assert queue.spool.path is not None
    assert len(queue.spool.path.read_bytes().splitlines()) == 15
    with pytest.raises(redis.ConnectionError):
        usage_stream_drain(max_seconds=1)

    private_redis.start()  # comes back empty: no stream, no consumer group
    asyncio.run(queue.aclose())  # the flusher re-sends the spool once Redis answers
    assert queue.spool.size == 0
    assert list(spool_dir().glob("*.jsonl")) == []  # spool emptied and removed at close
    assert usage_stream_drain(max_seconds=10).recorded == 15
    assert UsageRecord.objects.count() == 25
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {
        e.request_id for e in before + during
    }


def test_shutdown_with_redis_down_spools_and_drain_task_records_it(
    private_redis: RedisServer,
) -> None:
    queue = RedisStreamUsageQueue()
    events = [event() for _ in range(12)]
    private_redis.stop()
    put_all(queue, events)  # buffered, then aclose(): Redis refuses -> spool file stays
    files = list(spool_dir().glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_bytes().splitlines()) == 12
    private_redis.start()
    # The process is gone (its lock released): the drain task adopts the orphan file.
    result = usage_drain()
    assert result.spooled == 12
    assert UsageRecord.objects.count() == 12
    assert list(spool_dir().glob("*.jsonl")) == []


def test_shutdown_drains_the_buffer(with_redis: str) -> None:
    queue = RedisStreamUsageQueue()

    async def run() -> None:
        for _ in range(300):
            queue.put(event())
        assert len(queue) > 0  # nothing sent yet: put() never waits on Redis
        await queue.aclose()

    asyncio.run(run())
    assert len(queue) == 0
    assert stream_len() == 300


def test_the_stream_is_capped_at_its_maxlen(with_redis: str, settings: Any) -> None:
    # A cap far below what is appended: Redis trims whole nodes of entries ("~", cheap), so
    # the stream ends up near the cap, never at everything appended.
    settings.GATEWAY_USAGE_STREAM_MAXLEN = 10
    put_all(RedisStreamUsageQueue(), [event() for _ in range(1_000)])
    assert stream_len() <= 200  # one node (100 entries by default) over the cap at most
    client = sync_redis()
    assert client is not None
    [(_, fields)] = client.xrevrange(settings.GATEWAY_USAGE_STREAM, count=1)
    assert list(fields) == [b"e"] and orjson.loads(fields[b"e"])["endpoint"] == "chat"


def test_live_spool_is_not_adopted_but_dead_ones_are(with_redis: str) -> None:
    live = Spool()
    live.append([event().to_dict().__repr__().encode()])  # content irrelevant: never read
    dead_path = spool_dir() / "otherhost-1-dead.jsonl"
    import orjson

    dead_path.write_bytes(b"".join(orjson.dumps(event()) + b"\n" for _ in range(4)))
    assert usage_drain().spooled == 4
    assert not dead_path.exists()
    assert live.path is not None and live.path.exists()  # locked by a live owner: left alone
    live.consume(live.size)
    live.close()
    assert not list(spool_dir().glob("*.jsonl"))


def test_idle_consumers_without_pending_entries_are_pruned(with_redis: str) -> None:
    client = sync_redis()
    assert client is not None
    put_all(RedisStreamUsageQueue(), [event() for _ in range(2)])
    recorder.usage_group_ensure(client=client)
    stream, group = settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP
    client.xreadgroup(group, "holding", {stream: ">"}, count=1)  # keeps one entry pending
    usage_stream_drain(consumer="gone", claim_idle_seconds=60)  # records the other one
    assert recorder.usage_consumers_prune(client=client, keep="me", idle_seconds=0) == 1
    names = {c["name"] for c in client.xinfo_consumers(stream, group)}
    assert names == {b"holding"}  # pending work is never forgotten
