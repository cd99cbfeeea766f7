"""The request path's pipeline (``providers.redis_pipeline``): redis-py's answers, against a
real Redis, and a Redis that stops answering mid-batch (a fake server on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from providers.redis_conn import async_redis
from providers.redis_pipeline import LeanPipeline, LeanRedis

UNKNOWN_SHA = "0" * 40


def _queue(pipe: Any) -> None:
    # Replies of every shape the gateway reads, callbacks (SET, EXPIRE) and errors included.
    pipe.set("lp:s", b"\x00\xff")
    pipe.get("lp:s")
    pipe.incrby("lp:n", 7)
    pipe.expire("lp:n", 60)
    pipe.expire("lp:absent", 60)
    pipe.hset("lp:h", mapping={"a": 1, "b": "two"})
    pipe.hgetall("lp:h")
    pipe.execute_command("EVALSHA", UNKNOWN_SHA, 1, "lp:n", b"{}")  # NOSCRIPT, as a value
    pipe.incrby("lp:s", 1)  # not an integer: an error, as a value
    pipe.eval("return {KEYS[1], ARGV[1], 3}", 1, "lp:k", "caf\u00e9")
    pipe.xadd("lp:x", {b"e": b'{"n":1}'}, maxlen=100, approximate=True)
    pipe.xlen("lp:x")


def _comparable(replies: list[Any]) -> list[Any]:
    out: list[Any] = []
    for reply in replies:
        if isinstance(reply, Exception):
            out.append((type(reply), str(reply)))
        elif isinstance(reply, bytes) and reply[:1].isdigit() and b"-" in reply:
            out.append("stream id")  # XADD's id differs between the two runs
        else:
            out.append(reply)
    return out


def test_replies_are_redis_pys(redis_url: str) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        lean = LeanRedis.from_url(redis_url)
        plain = aioredis.Redis.from_url(redis_url)
        answers = []
        for client in (plain, lean):
            await client.delete("lp:s", "lp:n", "lp:h", "lp:x")
            pipe = client.pipeline(transaction=False)
            _queue(pipe)
            answers.append(await pipe.execute(raise_on_error=False))
            await client.aclose()
        return answers[0], answers[1]

    expected, got = asyncio.run(scenario())
    assert _comparable(got) == _comparable(expected)
    assert got[1] == b"\x00\xff" and got[3] is True and got[4] is False
    assert got[6] == {b"a": b"1", b"b": b"two"}
    assert isinstance(got[7], redis.exceptions.NoScriptError)
    assert isinstance(got[8], redis.exceptions.ResponseError)
    assert got[9] == [b"lp:k", "caf\u00e9".encode(), 3] and got[11] == 1


def test_raise_on_error_raises_the_first_error_as_redis_py_does(redis_url: str) -> None:
    async def first_error(client: aioredis.Redis) -> str:
        pipe = client.pipeline(transaction=False)
        _queue(pipe)
        try:
            await pipe.execute()
        except redis.exceptions.ResponseError as error:
            return str(error)
        finally:
            await client.aclose()
        raise AssertionError("no error raised")

    lean = asyncio.run(first_error(LeanRedis.from_url(redis_url)))
    plain = asyncio.run(first_error(aioredis.Redis.from_url(redis_url)))
    assert lean == plain and "Command # 8 (EVALSHA" in lean


def test_transactions_keep_redis_pys_path(redis_url: str) -> None:
    async def scenario() -> list[Any]:
        client = LeanRedis.from_url(redis_url)
        async with client.pipeline(transaction=True) as pipe:
            pipe.set("lp:t", 1)
            pipe.incrby("lp:t", 2)
            replies = await pipe.execute()
        await client.aclose()
        return list(replies)

    assert asyncio.run(scenario()) == [True, 3]


def test_the_gateway_s_clients_use_it(with_redis: str) -> None:
    async def scenario() -> type:
        client = async_redis()
        assert client is not None
        return type(client.pipeline(transaction=False))

    # Each scheme's client class: tests/providers/test_redis_packing.py.
    assert asyncio.run(scenario()) is LeanPipeline


class _EchoServer:
    """A Redis stand-in that answers ECHO, holding back the reply of any argument that starts
    with ``slow`` for ``hold`` seconds (a Redis that stalls mid-batch, then answers late)."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                header = await reader.readline()
                if not header:
                    return
                words = []
                for _ in range(int(header[1:])):
                    size = int((await reader.readline())[1:])
                    words.append((await reader.readexactly(size + 2))[:-2])
                if words[0].upper() != b"ECHO":
                    writer.write(b"+OK\r\n")  # the handshake (CLIENT SETINFO)
                    continue
                if words[1].startswith(b"slow"):
                    await writer.drain()
                    await asyncio.sleep(self.hold)
                writer.write(b"$%d\r\n%s\r\n" % (len(words[1]), words[1]))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return


def _echo_scenario(test: Callable[[LeanRedis, _EchoServer], Any]) -> Any:
    async def scenario() -> Any:
        fake = _EchoServer(hold=0.2)
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # No retries: the test watches one exchange (redis-py's policy would re-send it).
        client = LeanRedis(
            host="127.0.0.1", port=port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
        )
        try:
            return await test(client, fake)
        finally:
            await client.aclose()
            server.close()

    return asyncio.run(scenario())


def test_a_stalled_batch_times_out_once_and_never_desyncs_the_next() -> None:
    async def test(client: LeanRedis, fake: _EchoServer) -> tuple[float, list[Any], int]:
        pipe = client.pipeline(transaction=False)
        for word in ("fast", "slow1", "slow2", "slow3"):
            pipe.echo(word)
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            await pipe.execute()
        waited = time.monotonic() - started
        await asyncio.sleep(3 * fake.hold + 0.2)  # the late replies have arrived by now
        pipe = client.pipeline(transaction=False)
        pipe.echo("a")
        pipe.echo("b")
        return waited, await pipe.execute(), fake.connections

    waited, replies, connections = _echo_scenario(test)
    # One deadline for the whole batch: each reply comes within the socket timeout (0.2 s
    # against 0.3 s), but not all of them (0.6 s); a timeout per read would have waited.
    assert 0.25 < waited < 0.55
    # The connection that timed out was dropped: its late replies are nobody's.
    assert replies == [b"a", b"b"] and connections == 2
