"""Microbenchmark of one upstream call through the seam's transport, in one process.

    python bench/seam_micro.py --url http://127.0.0.1:PORT/v1/chat/completions [-n 5000]

Sequential POSTs on a keep-alive connection (uvloop), CPU microseconds per call (process time,
so a loaded machine inflates it less than wall time) for: plain aiohttp (the floor's client),
``providers.transport.request`` (the seam now) and, when ``httpx-aiohttp`` is installed,
httpx's ``AsyncClient`` over its transport (the seam before), run alternately in rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

BODY = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-upstream-bench"}


async def main(url: str, n: int, rounds: int) -> None:
    import aiohttp
    import httpx

    from providers import transport

    plain = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:  # the seam's client before (no longer a dependency: installed by hand to compare)
        from httpx_aiohttp import AiohttpTransport

        old = httpx.AsyncClient(transport=AiohttpTransport(), trust_env=False)
    except ImportError:
        old = None

    async def via_aiohttp() -> None:
        async with plain.post(url, data=BODY, headers=HEADERS) as r:
            await r.read()

    async def via_seam() -> None:
        r = await transport.request(
            "POST", url, params=None, headers=HEADERS, body=BODY, connect=5, read=30, stream=False
        )
        await r.aclose()

    async def via_httpx() -> None:
        assert old is not None
        r = await old.post(url, content=BODY, headers=HEADERS, timeout=httpx.Timeout(30, connect=5))
        await r.aclose()

    cases = {"aiohttp": via_aiohttp, "seam (aiohttp direct)": via_seam}
    if old is not None:
        cases["httpx over aiohttp (httpx-aiohttp)"] = via_httpx
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            for _ in range(200):  # warm
                await call()
            t = time.process_time()
            for _ in range(n):
                await call()
            cpu[name].append((time.process_time() - t) / n * 1e6)
    for name, values in cpu.items():
        print(f"{name:24s} {statistics.median(values):7.1f} us CPU per call (median of {rounds})")
    await plain.close()
    if old is not None:
        await old.aclose()
    await transport.close_session()


if __name__ == "__main__":
    import django
    import uvloop

    django.setup()
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    a = parser.parse_args()
    uvloop.run(main(a.url, a.n, a.rounds))
