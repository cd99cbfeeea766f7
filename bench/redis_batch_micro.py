"""Microbenchmark of the routing call's Redis cost, alone and in pipelines, in one process.

    python bench/redis_batch_micro.py --url redis://127.0.0.1:6379/15 [-n 4000]

CPU microseconds per script call (process time) for: a lone ``EVALSHA`` through redis-py's
registered script (each request's own call, as before the routing calls were batched), the
same calls made 8 at a time concurrently (8 connections), and pipelines of 2, 4 and 8 calls
(``gateway.routing.state.releases.ScriptBatch``'s shape). The script is a small stand-in
(one INCR on one key): what is measured is the client's and the socket's share. The key is
deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import redis.asyncio as aioredis
import uvloop

LUA = "return {redis.call('INCR', KEYS[1]), ARGV[1]}"
KEY = "gw:bench:redis-batch-micro"


async def main(url: str, n: int) -> None:
    client = aioredis.Redis.from_url(url)
    script = client.register_script(LUA)
    await script([KEY], ["x"])  # loaded, one connection open

    def report(what: str, started: float) -> None:
        print(f"{what:28} {(time.process_time() - started) / n * 1e6:6.1f} us CPU per call")

    started = time.process_time()
    for _ in range(n):
        await script([KEY], ["x"])
    report("lone EVALSHA", started)
    started = time.process_time()
    for _ in range(n // 8):
        await asyncio.gather(*(script([KEY], ["x"]) for _ in range(8)))
    report("8 concurrent, one each", started)
    for size in (2, 4, 8):
        started = time.process_time()
        for _ in range(n // size):
            pipe = client.pipeline(transaction=False)
            for _ in range(size):
                pipe.execute_command("EVALSHA", script.sha, 1, KEY, "x")
            await pipe.execute(raise_on_error=False)
        report(f"pipelines of {size}", started)
    await client.delete(KEY)
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("-n", type=int, default=4000)
    args = parser.parse_args()
    uvloop.run(main(args.url, args.n))
