"""Streams are relayed chunk by chunk (never buffered whole), and a client that goes away
closes the upstream stream instead of leaving it to run for nobody."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import World
from tests.fakes.upstream import Behaviour

pytestmark = pytest.mark.e2e

WORDS = "one two three four five six"


def alias_key(e2e: World, alias: str, instance: str, provider_type: str = "openai") -> str:
    """A virtual key for ``alias`` served by one instance of ``provider_type``, published."""
    e2e.mapping(alias, e2e.provider(instance, provider_type))
    key = e2e.vkey()
    e2e.publish()
    return key


@pytest.fixture
def key(e2e: World) -> str:
    return alias_key(e2e, "m", "streamer")


def stream_request(key: str, text: str = WORDS, model: str = "m") -> dict:
    return {
        "method": "POST",
        "url": "/v1/chat/completions",
        "json": {"model": model, "stream": True, "messages": [{"role": "user", "content": text}]},
        "headers": {"authorization": f"Bearer {key}"},
    }


@pytest.mark.parametrize("provider_type", ["openai", "anthropic"])
def test_first_chunk_arrives_before_the_upstream_sends_the_last(
    e2e: World, provider_type: str
) -> None:
    key = alias_key(e2e, "paced", "paced", provider_type)
    e2e.fake.behave(Behaviour(chunk_delay=0.12))
    request = stream_request(key, model="paced")
    received: list[tuple[float, str]] = []
    with e2e.http().stream(**request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content":"' in line.replace(" ", ""):
                received.append((time.monotonic(), line))
    [upstream] = e2e.fake.requests()
    # The client can read the final event before the fake's handler returns from write_eof
    # and records that it finished, so wait for the handler rather than race it.
    assert upstream.done.wait(5), "the upstream handler never finished"
    assert upstream.completed and len(upstream.sent_at) >= 8
    text_chunks = [(t, line) for t, line in received if '"content":""' not in line]
    assert len(text_chunks) >= 6  # one per word: relayed as separate events
    first_received = text_chunks[0][0]
    last_sent = upstream.sent_at[-1]
    assert first_received < last_sent, "the gateway held the stream back until the end"


def test_client_disconnect_closes_the_upstream_stream(e2e: World, key: str) -> None:
    long_text = " ".join(f"word{i}" for i in range(30))
    e2e.fake.behave(Behaviour(chunk_delay=0.1))  # ~3 s of stream if read to the end
    client = httpx.Client(base_url=e2e.server.url, timeout=10)
    with client.stream(**stream_request(key, long_text)) as response:
        for line in response.iter_lines():
            if "word0" in line:
                break  # leave after the first content chunk
    client.close()  # the connection goes away mid-stream
    [upstream] = e2e.fake.requests()
    assert upstream.done.wait(5), "the upstream stream was not closed"
    assert upstream.disconnected and not upstream.completed
    assert len(upstream.sent_at) < upstream.planned_chunks


@pytest.mark.parametrize("provider_type", ["openai", "anthropic"])
def test_a_finished_stream_leaves_its_upstream_connection_reusable(
    e2e: World, provider_type: str
) -> None:
    """The relay stops at the stream's last event ([DONE] or message_stop); the upstream
    connection must still go back to the pool, not be closed for the unread end of the body
    (a new TCP and TLS handshake to the provider on every streamed call otherwise)."""
    key = alias_key(e2e, "reused", "reused", provider_type)
    e2e.fake.behave(Behaviour(eof_delay=0.05))
    request = stream_request(key, model="reused")
    client = e2e.http()
    for n in range(1, 4):
        with client.stream(**request) as response:
            assert response.status_code == 200
            body = response.read().decode()
        assert "[DONE]" in body
        # The connection is busy until the body's end has been read (after the client's
        # response ended): give the gateway that moment before the next call.
        assert e2e.fake.requests()[-1].done.wait(5)
        time.sleep(0.2)
        assert len(e2e.fake.requests()) == n
    upstream = e2e.fake.requests()
    assert all(r.completed for r in upstream)
    peers = {r.peer for r in upstream}
    assert len(peers) == 1, f"each stream used a new upstream connection: {peers}"
