"""The fake upstream itself: wire formats, request log and switchable behaviours.

Later tests trust this fake to behave like the real providers, so its contract is pinned here.
"""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest

from tests.fakes import wire
from tests.fakes.upstream import Behaviour, FakeUpstream

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hello there"}]}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[str]:
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


def post(fake: FakeUpstream, path: str, body: object, key: str = "sk-test", **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **kw.pop("headers", {})}
    kw.setdefault("timeout", 5)
    return httpx.post(fake.url + path, json=body, headers=headers, **kw)


def test_openai_chat_echoes_and_reports_usage(fake_upstream: FakeUpstream) -> None:
    r = post(fake_upstream, "/v1/chat/completions", CHAT)
    assert r.status_code == 200
    data = r.json()
    assert data["choices"][0]["message"]["content"] == wire.echo_reply("hello there")
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    [req] = fake_upstream.requests()
    assert (req.method, req.path, req.route, req.api_key) == (
        "POST",
        "/v1/chat/completions",
        "openai_chat",
        "sk-test",
    )
    assert req.json == CHAT and req.completed and not req.disconnected
    assert req.usage == {"prompt_tokens": 2, "completion_tokens": 3}


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_stream_usage_chunk_only_when_asked(
    fake_upstream: FakeUpstream, include_usage: bool
) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": include_usage}}
    r = post(fake_upstream, "/v1/chat/completions", body)
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == wire.echo_reply("hello there")
    with_usage = [c for c in chunks if c.get("usage")]
    assert len(with_usage) == (1 if include_usage else 0)
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5
    [req] = fake_upstream.requests()
    assert req.done.wait(5)  # the client may see EOF before the handler records it
    assert req.stream and len(req.sent_at) == len(data) and req.completed


def test_openai_tool_call_then_answer(fake_upstream: FakeUpstream) -> None:
    r = post(fake_upstream, "/v1/chat/completions", {**CHAT, "tools": TOOLS})
    message = r.json()["choices"][0]["message"]
    [call] = message["tool_calls"]
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"input": "hello there"}
    follow = {
        **CHAT,
        "tools": TOOLS,
        "messages": [
            *CHAT["messages"],
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "42"},
        ],
    }
    r = post(fake_upstream, "/v1/chat/completions", follow)
    assert r.json()["choices"][0]["message"]["content"] == wire.tool_answer("42")


def test_azure_requires_api_version_and_sends_filter_chunk_first(
    fake_upstream: FakeUpstream,
) -> None:
    path = "/openai/deployments/dep-1/chat/completions"
    assert post(fake_upstream, path, CHAT).status_code == 404
    r = post(fake_upstream, path, {**CHAT, "stream": True}, params={"api-version": "2024-10-21"})
    first = json.loads(sse_data(r.text)[0])
    assert first["choices"] == [] and "prompt_filter_results" in first
    chunks = [json.loads(d) for d in sse_data(r.text)[1:-1]]
    assert {c["model"] for c in chunks} == {"dep-1"}
    req = fake_upstream.requests()[-1]
    assert req.route == "azure_chat" and req.query == {"api-version": "2024-10-21"}


def test_embeddings_openai_and_azure(fake_upstream: FakeUpstream) -> None:
    r = post(fake_upstream, "/v1/embeddings", {"model": "fake-embed", "input": ["a b", "c"]})
    data = r.json()
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert data["usage"]["prompt_tokens"] == 3 and len(data["data"][0]["embedding"]) == 4
    r = post(
        fake_upstream,
        "/openai/deployments/emb/embeddings",
        {"input": "x"},
        params={"api-version": "v"},
    )
    assert r.json()["model"] == "emb"


def test_models_in_both_formats(fake_upstream: FakeUpstream) -> None:
    openai = httpx.get(fake_upstream.url + "/v1/models").json()
    assert openai["object"] == "list" and openai["data"][0]["object"] == "model"
    anthropic = httpx.get(
        fake_upstream.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}
    ).json()
    assert anthropic["data"][0]["type"] == "model" and anthropic["has_more"] is False


ANTHROPIC = {
    "model": "claude-fake",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi claude"}],
}
A_HEADERS = {"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"}


def test_anthropic_message_and_validation(fake_upstream: FakeUpstream) -> None:
    r = httpx.post(fake_upstream.url + "/v1/messages", json=ANTHROPIC, headers=A_HEADERS)
    data = r.json()
    assert data["content"] == [{"type": "text", "text": wire.echo_reply("hi claude")}]
    assert data["stop_reason"] == "end_turn" and data["usage"]["input_tokens"] == 2
    assert fake_upstream.requests()[0].api_key == "sk-ant"
    bad = {k: v for k, v in ANTHROPIC.items() if k != "max_tokens"}
    r = httpx.post(fake_upstream.url + "/v1/messages", json=bad, headers=A_HEADERS)
    assert r.status_code == 400 and r.json()["type"] == "error"
    r = httpx.post(fake_upstream.url + "/v1/messages", json=ANTHROPIC, headers={"x-api-key": "k"})
    assert r.status_code == 400  # no anthropic-version


def test_anthropic_stream_event_sequence_with_tool_use(fake_upstream: FakeUpstream) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    body = {**ANTHROPIC, "stream": True, "tools": tools}
    r = httpx.post(fake_upstream.url + "/v1/messages", json=body, headers=A_HEADERS)
    names = sse_events(r.text)
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-2:] == ["message_delta", "message_stop"]
    datas = [json.loads(d) for d in sse_data(r.text)]
    starts = [d for d in datas if d["type"] == "content_block_start"]
    assert starts[1]["content_block"]["type"] == "tool_use"
    partial = "".join(
        d["delta"]["partial_json"]
        for d in datas
        if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == {"input": "hi claude"}
    assert datas[-2]["delta"]["stop_reason"] == "tool_use"
    tool_id = starts[1]["content_block"]["id"]
    follow = {
        **ANTHROPIC,
        "tools": tools,
        "messages": [
            *ANTHROPIC["messages"],
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": tool_id, "name": "lookup", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "sunny"}],
            },
        ],
    }
    r = httpx.post(fake_upstream.url + "/v1/messages", json=follow, headers=A_HEADERS)
    assert r.json()["content"][0]["text"] == wire.tool_answer("sunny")
    follow["messages"][2]["content"][0]["tool_use_id"] = "toolu_other"
    r = httpx.post(fake_upstream.url + "/v1/messages", json=follow, headers=A_HEADERS)
    assert r.status_code == 400


def test_behaviour_per_key_times_and_global(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour.fail(429, retry_after=7, times=1), key="sk-a")
    fake_upstream.behave(Behaviour.fail(503))
    r = post(fake_upstream, "/v1/chat/completions", CHAT, key="sk-a")
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["type"] == "rate_limit_exceeded"
    # sk-a's behaviour is used up: the global one applies now, to everyone.
    assert post(fake_upstream, "/v1/chat/completions", CHAT, key="sk-a").status_code == 503
    assert post(fake_upstream, "/v1/chat/completions", CHAT, key="sk-b").status_code == 503
    fake_upstream.reset()
    assert post(fake_upstream, "/v1/chat/completions", CHAT, key="sk-a").status_code == 200
    assert len(fake_upstream.requests()) == 1  # reset empties the log


def test_behaviour_status_body_in_route_format(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour.fail(401, "bad key"))
    r = httpx.post(fake_upstream.url + "/v1/messages", json=ANTHROPIC, headers=A_HEADERS)
    assert r.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "bad key"},
    }


def test_slow_answer_and_client_giving_up_is_seen(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour.slow(5))
    t = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post(fake_upstream, "/v1/chat/completions", CHAT, timeout=0.3)
    [req] = fake_upstream.requests()
    assert req.done.wait(2) and req.disconnected and not req.completed
    assert time.monotonic() - t < 3


@pytest.mark.parametrize("mode", ["reset", "close"])
def test_connection_dropped(fake_upstream: FakeUpstream, mode: str) -> None:
    fake_upstream.behave(Behaviour(mode=mode))
    with pytest.raises(httpx.TransportError):
        post(fake_upstream, "/v1/chat/completions", CHAT)


def test_garbage(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour(mode="garbage"))
    r = post(fake_upstream, "/v1/chat/completions", CHAT)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_stream_then_error_event(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour(mode="stream_error", after_chunks=2))
    r = post(fake_upstream, "/v1/chat/completions", {**CHAT, "stream": True})
    data = sse_data(r.text)
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for d in data[1:-1]]
    assert contents == ["Echo:", " hello"]
    assert "error" in json.loads(data[-1])


def test_stream_then_abort(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour(mode="stream_abort", after_chunks=1, chunk_delay=0.01))
    received = []
    url = fake_upstream.url + "/v1/chat/completions"
    with (
        pytest.raises(httpx.TransportError),
        httpx.stream("POST", url, json={**CHAT, "stream": True}) as r,
    ):
        for line in r.iter_lines():  # the error comes mid-iteration
            received.append(line)
    assert any("Echo:" in line for line in received)
    assert not fake_upstream.requests()[0].completed


def test_stream_chunks_are_spaced_and_timestamped(fake_upstream: FakeUpstream) -> None:
    fake_upstream.behave(Behaviour(chunk_delay=0.05))
    post(fake_upstream, "/v1/chat/completions", {**CHAT, "stream": True})
    sent = fake_upstream.requests()[0].sent_at
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps and min(gaps) >= 0.04


def test_server_stops() -> None:
    fake = FakeUpstream().start()
    url = fake.url
    assert httpx.get(url + "/v1/models").status_code == 200
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/models", timeout=1)
