"""The asyncio Redis clients pack commands with hiredis: the same bytes as redis-py's own
packing, the same refusal of what redis-py refuses, and real round trips through them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.sentinel import SentinelManagedConnection

from providers.redis_conn import _PackedInC, async_redis, build_async_client
from providers.redis_pipeline import LeanRedis
from providers.redis_topology import redis_topology

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "key", "value"),
    ("EVALSHA", "a" * 40, 3, "gw:{p:1}:i", "gw:{p:1}:c", "gw:{p:1}:t", b'{"ok":true}'),
    ("XADD", "gw:usage", "MAXLEN", "~", 100000, "*", b"e", b"\x00\xff" * 300),
    ("SET", "k", 0.1 + 0.2),
    ("SET", "k", 10**20),
    ("SET", "k", -7),
    ("SET", "caf\u00e9", "\u7cd7"),
    ("CONFIG GET", "maxmemory"),  # a two-word command name, split as redis-py splits it
    (b"CONFIG GET", b"maxmemory"),
    ("SET", "k", memoryview(b"view")),
    ("SET", "k", bytearray(b"array")),  # hiredis refuses it: redis-py's packing takes it
    ("SET", "k", b"x" * 200_000),  # above redis-py's buffer cutoff
]


class _Packed(_PackedInC, Connection):
    pass


@pytest.mark.parametrize("args", COMMANDS, ids=[repr(c[:2])[:40] for c in COMMANDS])
def test_packed_in_c_are_the_bytes_redis_py_packs(args: tuple[Any, ...]) -> None:
    python = b"".join(bytes(chunk) for chunk in Connection().pack_command(*args))
    assert b"".join(_Packed().pack_command(*args)) == python


@pytest.mark.parametrize("value", [True, None, object()])
def test_what_redis_py_refuses_is_refused_alike(value: Any) -> None:
    with pytest.raises(redis.DataError) as python:
        Connection().pack_command("SET", "k", value)
    with pytest.raises(redis.DataError) as packed:
        _Packed().pack_command("SET", "k", value)
    assert str(packed.value) == str(python.value)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6379/0", SSLConnection),
        ("redis+sentinel://127.0.0.1:26379/mymaster/0", SentinelManagedConnection),
    ],
)
def test_each_scheme_keeps_its_own_connection_class(url: str, base: type) -> None:
    topo = redis_topology(url, cluster=False)
    assert topo is not None
    client = build_async_client(topo)
    chosen = client.connection_pool.connection_class
    assert issubclass(chosen, _PackedInC)
    assert issubclass(chosen, base)
    assert isinstance(client, LeanRedis)  # and its pipelines are providers.redis_pipeline's


def test_round_trips_through_the_packed_client(with_redis: str) -> None:
    async def scenario() -> list[Any]:
        client = async_redis()
        assert client is not None
        assert issubclass(client.connection_pool.connection_class, _PackedInC)
        script = client.register_script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
        out: list[Any] = [await script(["pk:key"], ["caf\u00e9", 41])]
        async with client.pipeline(transaction=False) as pipe:
            pipe.set("pk:bytes", b"\x00\xff")
            pipe.incrbyfloat("pk:float", 0.5)
            pipe.xadd("pk:stream", {b"e": b'{"n":1}'})
            pipe.get("pk:bytes")
            out.append(await pipe.execute())
        await client.aclose()
        return out

    scripted, piped = asyncio.run(scenario())
    assert scripted == [b"pk:key", "caf\u00e9".encode(), 42]
    assert piped[0] is True and float(piped[1]) == 0.5 and piped[3] == b"\x00\xff"
