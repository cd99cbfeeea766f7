"""A minimal fixed-response upstream for benchmarks (used when nginx is absent, and always for
streams, which nginx cannot pace).

    python bench/upstream.py --port 18081

``POST .../chat/completions`` answers a fixed chat completion; with ``"stream": true`` it sends
``n_chunks`` SSE chunks (default 20; the body's ``bench_chunks`` overrides) spaced by
``bench_delay`` seconds, the first one at once.

A failing instance for breaker benches (bench/cluster.py): ``POST /fail/...`` answers 500 and
counts the call, ``GET /fail/.../models`` (the health probe) answers a model list, and
``GET /calls`` returns ``{"fail": calls so far}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
).encode()


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


CALLS = web.AppKey("calls", dict)


async def chat(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/fail/"):
        request.app[CALLS]["fail"] += 1
        return web.json_response({"error": {"message": "bench: failing on purpose"}}, status=500)
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=BODY, content_type="application/json")
    n = int(body.get("bench_chunks", 20))
    delay = float(body.get("bench_delay", 0))
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for i in range(n):
        await response.write(_chunk(f"t{i} "))
        if delay:
            await asyncio.sleep(delay)
    await response.write(_chunk(None, "stop"))
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n},
    }
    await response.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini"}]})


async def calls(request: web.Request) -> web.Response:
    return web.json_response(request.app[CALLS])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    app = web.Application()
    app[CALLS] = {"fail": 0}
    app.router.add_get("/calls", calls)
    app.router.add_get("/{tail:.*}", models)
    app.router.add_post("/{tail:.*}", chat)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
