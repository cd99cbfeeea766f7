"""The Python floor for ``make bench``: what forwarding a chat completion costs in Python with
no gateway logic at all (no auth, no routing, no usage, no Django).

    FLOOR_UPSTREAM=http://127.0.0.1:8081/v1 FLOOR_STREAM_UPSTREAM=http://127.0.0.1:8082/v1 \
        python bench/floor.py --port 8090 --workers 2

A raw ASGI app on the uvicorn settings of ``manage.py serve`` (uvloop, httptools, the same
keep-alive and worker count) that forwards ``POST /v1/chat/completions`` with one pooled aiohttp
session per worker: the whole answer, or a stream relayed chunk by chunk. ``bench-stream``
requests go to the stream upstream, like the bench gateway's alias of that name.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
import uvicorn

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:18081/v1") + "/chat/completions"
STREAM = os.environ.get("FLOOR_STREAM_UPSTREAM", UPSTREAM.rsplit("/", 2)[0]) + "/chat/completions"
session: aiohttp.ClientSession | None = None
# Counts the request in a one-minute window key: one key read and written, as a rate limit's.
COUNT_LUA = "local n = redis.call('INCR', KEYS[1]) redis.call('PEXPIRE', KEYS[1], 60000) return n"
STATE_URL = os.environ.get("FLOOR_REDIS_URL", "")
count: Any = None  # the registered script, on the worker's loop


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session, count
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        if session is not None:
            await session.close()
        if count is not None:
            await count.registered_client.aclose()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    if session is None:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    if STATE_URL:
        if count is None:
            # A connection per request in flight, as redis-py pools them (its default cap
            # refuses calls beyond it at c=256).
            client = aioredis.Redis.from_url(STATE_URL, max_connections=4096)
            count = client.register_script(COUNT_LUA)
        await count(keys=["floor:requests"])
    url = STREAM if orjson.loads(body).get("model") == "bench-stream" else UPSTREAM
    headers = {"content-type": "application/json", "authorization": "Bearer sk-floor"}
    async with session.post(url, data=body, headers=headers) as upstream:
        ctype = upstream.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": upstream.status,
                "headers": [(b"content-type", ctype)],
            }
        )
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", metavar="URL", help="one Redis round trip per request")
    args = parser.parse_args()
    if args.redis:
        os.environ["FLOOR_REDIS_URL"] = args.redis  # the workers are spawned: they read it
    uvicorn.run(
        "floor:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
        proxy_headers=True,
        app_dir=os.path.dirname(os.path.abspath(__file__)),
    )
