"""Hot-path script calls sent together (``gateway.routing.state.releases.ScriptBatch``).

Against a real Redis: what a caller gets back, and what the server sees (its client list), are
what another gateway process or an operator would observe.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from gateway.routing.state.releases import (
    PendingRelease,
    release_call,
    release_queue,
    run_script,
)
from gateway.routing.state.windows import instance_key

# Answers its argument, or fails when asked to (a script error is that call's alone).
ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end
redis.call('INCR', KEYS[1])
return ARGV[1]
"""


@pytest.fixture
def batch_redis(with_redis: str) -> Iterator[str]:
    """The test Redis's URL; the keys these tests write are deleted afterwards."""
    yield with_redis
    with redis.Redis.from_url(with_redis) as client:
        client.delete("batch:count", "batch:f", "batch:n", "batch:c", instance_key(41))


def _client(url: str, name: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, client_name=name)


def _connections_named(url: str, name: str) -> int:
    with redis.Redis.from_url(url) as admin:
        return sum(1 for c in admin.client_list() if c.get("name") == name)


async def together(client: aioredis.Redis, script: Any, key: str, args: list[bytes]) -> list[Any]:
    """``run_script`` for each of ``args`` at once (in one turn of the loop); errors as values."""
    calls = (run_script(client, script, [key], arg) for arg in args)
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _numbered(n: int) -> list[bytes]:
    return [str(i).encode() for i in range(n)]


def test_calls_made_together_share_one_connection_and_each_gets_its_own_answer(
    batch_redis: str,
) -> None:
    async def scenario() -> list[Any]:
        client = _client(batch_redis, "batch-share")
        script = client.register_script(ECHO)
        await script(["batch:count"], ["warm"])  # loaded; the pool holds one connection
        answers = await together(client, script, "batch:count", _numbered(12))
        # Separate calls in flight at once would each have taken a connection of their own.
        assert _connections_named(batch_redis, "batch-share") == 1
        await client.aclose()
        return answers

    answers = asyncio.run(scenario())
    assert answers == _numbered(12)
    with redis.Redis.from_url(batch_redis) as check:
        assert int(check.get("batch:count") or 0) == 13  # every script ran, once


def test_a_failing_script_fails_only_its_own_call(batch_redis: str) -> None:
    async def scenario() -> list[Any]:
        client = _client(batch_redis, "batch-fail")
        script = client.register_script(ECHO)
        answers = await together(client, script, "batch:f", [b"a", b"fail", b"c"])
        await client.aclose()
        return answers

    first, failed, last = asyncio.run(scenario())
    assert (first, last) == (b"a", b"c")
    assert isinstance(failed, redis.exceptions.ResponseError)
    assert "asked to fail" in str(failed)


def test_a_redis_that_forgot_the_script_gets_it_and_each_call_runs_once(
    batch_redis: str,
) -> None:
    async def scenario() -> list[Any]:
        client = _client(batch_redis, "batch-noscript")
        script = client.register_script(ECHO)
        await script(["batch:n"], ["warm"])
        await client.script_flush()  # a restarted or failed-over Redis: NOSCRIPT for all
        answers = await together(client, script, "batch:n", _numbered(5))
        await client.aclose()
        return answers

    assert asyncio.run(scenario()) == _numbered(5)
    with redis.Redis.from_url(batch_redis) as check:
        assert int(check.get("batch:n") or 0) == 6  # refused calls did not run twice


def test_an_unreachable_redis_fails_every_call_of_the_turn_with_a_redis_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> list[Any]:
        client = aioredis.Redis(port=port, socket_connect_timeout=1)
        script = client.register_script(ECHO)
        answers = await together(client, script, "k", [b"x"] * 3)
        await client.aclose()
        return answers

    answers = asyncio.run(scenario())
    assert len(answers) == 3
    assert all(isinstance(a, redis.exceptions.ConnectionError) for a in answers)


def test_a_caller_that_goes_away_does_not_take_the_others_answers_with_it(
    batch_redis: str,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        client = _client(batch_redis, "batch-cancel")
        script = client.register_script(ECHO)
        await script(["batch:c"], ["warm"])
        gone = asyncio.ensure_future(run_script(client, script, ["batch:c"], b"gone"))
        kept = asyncio.ensure_future(run_script(client, script, ["batch:c"], b"kept"))
        await asyncio.sleep(0)  # both queued in this turn
        gone.cancel()
        answer = await kept
        await client.aclose()
        return gone.cancelled(), answer

    assert asyncio.run(scenario()) == (True, b"kept")


def test_queued_releases_ride_ahead_of_the_turns_scripts(batch_redis: str) -> None:
    """The process reads its own releases: a release queued before a read is applied first."""

    async def scenario() -> Any:
        client = _client(batch_redis, "batch-release")
        await client.hset(instance_key(41), "inflight", 3)
        call = (41, 1.0, True, 5.0, 0.2, 5, 30.0, 0)
        keys, args = release_call(*call)
        await release_queue.add(PendingRelease(keys, args, call))
        read = client.register_script("return redis.call('HGET', KEYS[1], 'inflight')")
        answer = await run_script(client, read, [instance_key(41)], b"")
        await client.aclose()
        return answer

    try:
        assert asyncio.run(scenario()) == b"2"
    finally:
        release_queue.clear()
