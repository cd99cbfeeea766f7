"""The one outbound HTTP seam (``providers.http``): headers per instance and transport errors.

Real requests to the fake upstream on loopback; no mocks of the seam itself.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from providers import http
from providers.adapters.base import UpstreamRequest
from providers.snapshot import ProviderSnapshot
from tests.factories import provider_snapshot
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.fakes.upstream import fake_upstream as fake_upstream  # fixture
from tests.fakes.upstream import fake_upstream_server as fake_upstream_server  # fixture


def snapshot(
    base_url: str,
    *,
    custom: dict[str, str] | None = None,
    forward: set[str] | None = None,
    timeout: float = 5.0,
    provider_type: str = "openai",
) -> ProviderSnapshot:
    return provider_snapshot(
        name="seam",
        provider_type=provider_type,
        base_url=base_url,
        timeout=timeout,
        custom_headers=tuple((custom or {}).items()),
        forward_headers=frozenset(forward or ()),
    )


def chat_request(base: str) -> UpstreamRequest:
    return UpstreamRequest(
        method="POST",
        url=f"{base}/chat/completions",
        headers={"content-type": "application/json", "authorization": "Bearer sk-upstream"},
        body=b'{"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}',
    )


@pytest.fixture
def run() -> Iterator:
    loop = asyncio.new_event_loop()

    def run(coro):  # type: ignore[no-untyped-def]
        return loop.run_until_complete(coro)

    yield run
    loop.run_until_complete(http.close_client())
    loop.close()


def test_instance_headers_order_and_allow_list() -> None:
    provider = snapshot(
        "http://x",
        custom={"X-Env": "prod", "authorization": "Bearer override"},
        forward={"x-trace"},
    )
    headers = http.instance_headers(
        provider,
        {"authorization": "Bearer sk-upstream", "content-type": "application/json"},
        {"x-trace": "t1", "x-client-secret": "s", "authorization": "Bearer sk-gw-virtual"},
    )
    assert headers["X-Env"] == "prod" and headers["x-trace"] == "t1"
    assert "x-client-secret" not in headers
    # The instance's custom header is applied last; the client's credentials never are.
    assert headers["authorization"] == "Bearer override"
    assert "sk-gw-virtual" not in str(headers)


def test_each_send_carries_its_own_instance_headers(run, fake_upstream: FakeUpstream) -> None:
    base = fake_upstream.url + "/v1"
    a = snapshot(base, custom={"X-Instance": "a", "X-Only-A": "1"})
    b = snapshot(base, custom={"X-Instance": "b"})

    async def go() -> None:
        for provider in (a, b, a, b):
            response = await http.send(provider, chat_request(base))
            assert response.status_code == 200
            await response.aclose()

    run(go())
    seen = [(r.headers["x-instance"], "x-only-a" in r.headers) for r in fake_upstream.requests()]
    assert seen == [("a", True), ("b", False), ("a", True), ("b", False)]


def test_upstream_cookies_are_never_replayed(run, fake_upstream: FakeUpstream) -> None:
    # One shared client serves every instance and account: a cookie one upstream account sets
    # must not travel with the next request, which may be another tenant's. By host name:
    # aiohttp's own jar (under httpx) ignores cookies set by IP addresses, not by names.
    base = fake_upstream.url.replace("127.0.0.1", "localhost") + "/v1"
    fake_upstream.behave(
        Behaviour(
            mode="status",
            status=200,
            body={"id": "x", "object": "chat.completion", "choices": []},
            headers={"set-cookie": "lb_session=tenant-a; Path=/"},
            times=1,
        )
    )
    a, b = snapshot(base, custom={"X-Instance": "a"}), snapshot(base, custom={"X-Instance": "b"})

    async def go() -> list[str]:
        seen = []
        for provider in (a, b):
            response = await http.send(provider, chat_request(base))
            seen.append(response.headers.get("set-cookie", ""))
            await response.aclose()
        return seen

    assert run(go())[0].startswith("lb_session=tenant-a")  # the upstream did set it
    assert [r.headers.get("cookie") for r in fake_upstream.requests()] == [None, None]


def test_in_process_adapter_gets_the_same_header_handling(run) -> None:
    provider = snapshot("", custom={"X-Env": "demo"}, provider_type="mock")
    request = chat_request("mock://local")

    async def go() -> httpx.Response:
        return await http.send(provider, request)

    response = run(go())
    assert response.status_code == 200
    assert request.headers["X-Env"] == "demo"


def test_refused_connection_is_a_connect_error_not_a_timeout(run) -> None:
    provider = snapshot("http://127.0.0.1:9")
    with pytest.raises(httpx.TransportError) as info:
        run(http.send(provider, chat_request("http://127.0.0.1:9")))
    assert isinstance(info.value, httpx.ConnectError)
    assert not isinstance(info.value, httpx.TimeoutException)


@pytest.mark.parametrize("mode", ["reset", "close"])
def test_dropped_connection_is_not_a_timeout(run, fake_upstream: FakeUpstream, mode: str) -> None:
    fake_upstream.behave(Behaviour(mode=mode))
    base = fake_upstream.url + "/v1"
    with pytest.raises(httpx.TransportError) as info:
        run(http.send(snapshot(base), chat_request(base)))
    assert not isinstance(info.value, httpx.TimeoutException)


def test_slow_upstream_is_a_timeout(run, fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour.slow(3))
    base = fake_upstream.url + "/v1"
    with pytest.raises(httpx.TimeoutException):
        run(http.send(snapshot(base, timeout=0.3), chat_request(base)))


def stream_request(base: str) -> UpstreamRequest:
    request = chat_request(base)
    request.body = request.body.replace(b'{"model"', b'{"stream": true, "model"')
    return request


@pytest.mark.parametrize("eof_delay, reused", [(0.05, True), (1.0, False)])
def test_close_after_tail_keeps_the_connection_only_if_the_body_ends(
    run, fake_upstream: FakeUpstream, monkeypatch, eof_delay: float, reused: bool
) -> None:
    # The relay stops at [DONE]; the body's end trails it by ``eof_delay``. Within the tail
    # bound the connection goes back to the pool; past it, it is given up (not waited on).
    monkeypatch.setattr(http, "TAIL_SECONDS", 0.3)
    fake_upstream.behave(Behaviour(eof_delay=eof_delay, times=1))
    base = fake_upstream.url + "/v1"
    provider = snapshot(base)

    async def go() -> float:
        response = await http.send(provider, stream_request(base), stream=True)
        lines = response.aiter_lines()
        async for line in lines:
            if line == "data: [DONE]":
                break
        started = asyncio.get_running_loop().time()
        await http.close_after_tail(response, lines)
        waited = asyncio.get_running_loop().time() - started
        again = await http.send(provider, chat_request(base))
        await again.aclose()
        return waited

    waited = run(go())
    first, second = fake_upstream.requests()
    assert first.done.wait(5) and first.completed is reused
    assert (first.peer == second.peer) is reused
    assert waited < 0.9  # bounded by TAIL_SECONDS (0.3 s), not the upstream's 1 s


def test_stream_is_relayed_chunk_by_chunk(run, fake_upstream: FakeUpstream) -> None:
    # Each chunk reaches the reader on its own, as the upstream sends it, not the whole body
    # at its end: the first line is read while the upstream still has chunks to pace out.
    fake_upstream.behave(Behaviour(chunk_delay=0.2, times=1))
    base = fake_upstream.url + "/v1"

    async def go() -> tuple[bool, int]:
        response = await http.send(snapshot(base), stream_request(base), stream=True)
        lines = response.aiter_lines()
        first = await anext(lines)
        done_early = fake_upstream.requests()[0].completed
        rest = [line async for line in lines if line.startswith("data: ")]
        await response.aclose()
        return first.startswith("data: ") and not done_early, len(rest)

    early, rest = run(go())
    assert early and rest >= 2


def test_closing_a_stream_mid_body_closes_its_connection(run, fake_upstream: FakeUpstream) -> None:
    # A client that goes away mid-stream: the relay closes the response, which must take the
    # upstream connection down (the upstream stops generating) rather than pool it half-read.
    fake_upstream.behave(Behaviour(chunk_delay=0.2, times=1))
    base = fake_upstream.url + "/v1"
    provider = snapshot(base)

    async def go() -> None:
        response = await http.send(provider, stream_request(base), stream=True)
        await anext(response.aiter_lines())
        await response.aclose()
        again = await http.send(provider, chat_request(base))
        assert again.status_code == 200
        await again.aclose()

    run(go())
    first, second = fake_upstream.requests()
    assert first.done.wait(5) and not first.completed
    assert first.peer != second.peer


def test_upstream_sees_httpx_default_headers(run, fake_upstream: FakeUpstream) -> None:
    base = fake_upstream.url + "/v1"

    async def go() -> None:
        response = await http.send(snapshot(base), chat_request(base))
        await response.aclose()

    run(go())
    (seen,) = fake_upstream.requests()
    assert seen.headers["user-agent"].startswith("python-httpx/")
    assert seen.headers["accept"] == "*/*" and "gzip" in seen.headers["accept-encoding"]


def test_a_worker_proxying_calls_never_loads_httpcore(fake_upstream: FakeUpstream) -> None:
    """httpcore (with h11, h2 and their backends) costs a worker ~5 MB and its first proxied
    call ~0.1 s: the seam drives aiohttp, so a worker that proxies calls never imports it."""
    base = fake_upstream.url + "/v1"
    code = (
        "import asyncio, sys, django; django.setup(); import gateway.asgi\n"
        "from providers import http, transport\n"
        "from tests.providers.test_http_seam import chat_request, snapshot\n"
        "async def go():\n"
        "    base = sys.argv[1]\n"
        "    for stream in (False, True):\n"
        "        r = await http.send(snapshot(base), chat_request(base), stream=stream)\n"
        "        await r.aread(); await r.aclose()\n"
        "    await transport.close_session()\n"
        "asyncio.run(go())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpcore', 'h11', 'h2')))"
    )
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code, base], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert len(fake_upstream.requests()) == 2  # both calls reached the upstream
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_whole_answer_reads_decoded_and_closed(
    run, fake_upstream: FakeUpstream, encoding: str
) -> None:
    # A real provider compresses its answer when the client accepts it (httpx's default
    # accept-encoding does): the seam hands back the decoded body either way, read and closed.
    answer = {"id": "chatcmpl-1", "choices": [{"message": {"content": "héllo " * 200}}]}
    raw = json.dumps(answer, ensure_ascii=False).encode()
    wire = gzip.compress(raw) if encoding == "gzip" else raw
    headers = {"content-encoding": "gzip"} if encoding == "gzip" else {}
    fake_upstream.behave(Behaviour(mode="status", status=200, body=wire, headers=headers))
    base = fake_upstream.url + "/v1"

    async def go() -> httpx.Response:
        response = await http.send(snapshot(base), chat_request(base))
        await response.aclose()
        return response

    response = run(go())
    assert response.content == raw and response.json() == answer
    assert response.text.count("héllo") == 200
    assert response.is_closed and response.is_stream_consumed
    assert response.num_bytes_downloaded == len(wire)
    assert response.headers.get("content-encoding") == headers.get("content-encoding")
