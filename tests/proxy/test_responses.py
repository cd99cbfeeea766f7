"""``POST /v1/responses`` in process, against the loopback fake: native relay to openai and
azure_openai instances, translation through chat completions for openai_compatible, anthropic
and mock ones, the event stream, built-in tools refused before anything is sent, the response
store (previous_response_id, GET/DELETE, per key, Redis and database), input_tokens, usage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.routing.table import RouteTable
from gateway.usage.events import InMemoryUsageQueue
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.fakes.wire import echo_reply, tool_answer
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db(transaction=True)

#: alias -> the fake's route that serves it (None: the in-process mock).
ROUTES = {
    "native": "openai_responses",
    "azure": "azure_responses",
    "compat": "openai_chat",
    "claude": "anthropic_messages",
    "mock": None,
}
TRANSLATED = ["compat", "claude", "mock"]
TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
}


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, Any]:
    url = fake_upstream.url
    make_mapping("native", make_provider("gpt-native", "openai", upstream_url=url))
    make_mapping("azure", make_provider("gpt-azure", "azure_openai", upstream_url=url))
    make_mapping("compat", make_provider("vllm", "openai_compatible", upstream_url=url))
    make_mapping("claude", make_provider("claude", "anthropic", upstream_url=url))
    make_mapping("mock", make_provider("mock", "mock"), max_output_tokens=64)
    key = make_vkey("resp-app")[1]
    other = make_vkey("other-app")[1]
    table = install_table()
    return {"key": key, "other": other, "table": table}


def call(
    gateway: InProcessGateway,
    key: str,
    method: str,
    path: str,
    body: Any = None,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}

    async def go(client: httpx.AsyncClient) -> httpx.Response:
        content = orjson.dumps(body) if body is not None else None
        return await client.request(method, path, content=content, headers=headers)

    return gateway.run(go)


def create(gateway: InProcessGateway, key: str, **body: Any) -> httpx.Response:
    return call(gateway, key, "POST", "/v1/responses", body)


def events_of(text: str) -> list[dict[str, Any]]:
    """The SSE events of a Responses stream; each ``event:`` line names its data's type."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert lines["event"] == data["type"]
        out.append(data)
    return out


def output_text(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


@pytest.mark.parametrize("alias", list(ROUTES))
def test_create_text_everywhere(
    alias: str,
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    r = create(
        gateway, world["key"], model=alias, input="hello responses", instructions="Be terse."
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "response" and data["id"].startswith("resp_")
    assert data["status"] == "completed" and data["output"][0]["type"] == "message"
    expected = (
        "Mock reply to: hello responses" if alias == "mock" else echo_reply("hello responses")
    )
    assert output_text(data) == expected
    usage = data["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert "output_text" not in data  # the SDKs compute it
    [event] = usage_queue.drain()
    assert event.endpoint == "responses" and event.status_code == 200 and event.model_alias == alias
    assert (event.prompt_tokens, event.completion_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )
    requests = fake_upstream.requests()
    assert [q.route for q in requests] == ([ROUTES[alias]] if ROUTES[alias] else [])
    if alias in ("native", "azure"):
        [q] = requests
        assert q.json["instructions"] == "Be terse." and q.json["input"] == "hello responses"
        assert q.json["model"] == ("dep-chat" if alias == "azure" else "fake-gpt")
        assert (event.prompt_tokens, event.completion_tokens) == (
            q.usage["prompt_tokens"],  # type: ignore[index]
            q.usage["completion_tokens"],  # type: ignore[index]
        )
    if alias == "azure":
        assert requests[0].path == "/openai/responses" and "api-version" in requests[0].query
    if alias == "compat":
        assert requests[0].json["messages"][0] == {"role": "system", "content": "Be terse."}


@pytest.mark.parametrize("alias", list(ROUTES))
def test_stream_event_sequence(
    alias: str, world: dict[str, Any], gateway: InProcessGateway, usage_queue: InMemoryUsageQueue
) -> None:
    r = create(gateway, world["key"], model=alias, input="stream me", stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = events_of(r.text)
    types = [e["type"] for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for name in ("content_part.added", "output_text.done", "content_part.done", "output_item.done"):
        assert "response." + name in types
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]
    assert deltas == output_text(final) and "stream me" in deltas
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0
    [event] = usage_queue.drain()
    assert event.endpoint == "responses" and event.stream and event.status_code == 200
    assert event.completion_tokens == final["usage"]["output_tokens"]


@pytest.mark.parametrize("alias", TRANSLATED)
def test_builtin_tool_refused_before_any_upstream_call(
    alias: str,
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    tools = [TOOL, {"type": "web_search"}]
    r = create(gateway, world["key"], model=alias, input="search", tools=tools)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "tools" and "web_search" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert fake_upstream.requests() == []
    [event] = usage_queue.drain()
    assert event.status_code == 400 and event.endpoint == "responses" and not event.attempts


def test_builtin_tool_goes_to_a_native_instance(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    r = create(gateway, world["key"], model="native", input="x", tools=[{"type": "web_search"}])
    assert r.status_code == 200, r.text
    [q] = fake_upstream.requests()
    assert q.json["tools"] == [{"type": "web_search"}]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("alias", ["compat", "claude", "native"])
def test_function_call_round_trip(
    alias: str, stream: bool, world: dict[str, Any], gateway: InProcessGateway
) -> None:
    key = world["key"]
    first = create(gateway, key, model=alias, input="find it", tools=[TOOL], stream=stream)
    assert first.status_code == 200, first.text
    response = events_of(first.text)[-1]["response"] if stream else first.json()
    calls = [item for item in response["output"] if item["type"] == "function_call"]
    assert len(calls) == 1 and calls[0]["name"] == "lookup"
    assert orjson.loads(calls[0]["arguments"]) == {"input": "find it"}
    result = {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "42"}
    # Without the store: the whole conversation sent back, as a stateless client does.
    history = [{"role": "user", "content": "find it"}, *response["output"], result]
    again = create(gateway, key, model=alias, input=history, tools=[TOOL], store=False)
    assert again.status_code == 200, again.text
    assert output_text(again.json()) == tool_answer("42")
    # With the store: only the tool result, continuing the stored response.
    chained = create(
        gateway, key, model=alias, input=[result], tools=[TOOL], previous_response_id=response["id"]
    )
    assert chained.status_code == 200, chained.text
    assert output_text(chained.json()) == tool_answer("42")


@pytest.mark.parametrize("redis", [False, True], ids=["database", "redis"])
@pytest.mark.parametrize("alias", ["compat", "mock", "native"])
def test_previous_response_id_get_and_delete(
    alias: str,
    redis: bool,
    request: pytest.FixtureRequest,
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    if redis:
        request.getfixturevalue("with_redis")
    key, other = world["key"], world["other"]
    first = create(gateway, key, model=alias, input="my name is Ada")
    assert first.status_code == 200, first.text
    rid = first.json()["id"]
    second = create(gateway, key, model=alias, input="what is my name", previous_response_id=rid)
    assert second.status_code == 200, second.text
    if alias == "compat":
        sent = fake_upstream.requests()[-1].json["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[1]["content"] == echo_reply("my name is Ada")
    if alias == "native":
        assert fake_upstream.requests()[-1].json["previous_response_id"] == rid

    got = call(gateway, key, "GET", f"/v1/responses/{rid}")
    assert got.status_code == 200 and got.json() == first.json()
    items = call(gateway, key, "GET", f"/v1/responses/{second.json()['id']}/input_items")
    assert items.status_code == 200, items.text
    texts = [i.get("content") for i in items.json()["data"] if i.get("role") == "user"]
    assert texts == ["what is my name", "my name is Ada"]  # newest first, as OpenAI lists
    for method in ("GET", "DELETE"):
        hidden = call(gateway, other, method, f"/v1/responses/{rid}")
        assert hidden.status_code == 404, hidden.text
    theirs = create(gateway, other, model=alias, input="hi", previous_response_id=rid)
    if alias != "native":  # a native instance is asked itself (the fake's store is global)
        assert theirs.status_code == 404, theirs.text
        assert theirs.json()["error"]["code"] == "previous_response_not_found"
    deleted = call(gateway, key, "DELETE", f"/v1/responses/{rid}")
    assert deleted.json() == {"id": rid, "object": "response", "deleted": True}
    assert call(gateway, key, "GET", f"/v1/responses/{rid}").status_code == 404
    assert call(gateway, key, "DELETE", f"/v1/responses/{rid}").status_code == 404


def test_unknown_previous_response_and_store_false(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    key = world["key"]
    r = create(gateway, key, model="compat", input="x", previous_response_id="resp_nope")
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"
    assert fake_upstream.requests() == []
    unstored = create(gateway, key, model="compat", input="forget me", store=False)
    assert unstored.json()["store"] is False
    assert call(gateway, key, "GET", f"/v1/responses/{unstored.json()['id']}").status_code == 404


def test_streamed_response_is_stored_before_completed(
    world: dict[str, Any], gateway: InProcessGateway
) -> None:
    r = create(gateway, world["key"], model="claude", input="remember", stream=True)
    final = events_of(r.text)[-1]["response"]
    got = call(gateway, world["key"], "GET", f"/v1/responses/{final['id']}")
    assert got.status_code == 200 and got.json() == final


@pytest.mark.parametrize("alias", ["compat", "native"])
def test_mid_stream_failure_is_response_failed(
    alias: str,
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    fake_upstream.behave(Behaviour(mode="stream_error", after_chunks=2))
    r = create(gateway, world["key"], model=alias, input="one two three four five", stream=True)
    assert r.status_code == 200
    events = events_of(r.text)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    [event] = usage_queue.drain()
    assert event.status_code == 502


def test_max_output_tokens_and_params_translated(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = {
        "model": "compat",
        "input": [
            {"type": "message", "role": "developer", "content": "dev note"},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "max_output_tokens": 50,
        "temperature": 0.2,
        "parallel_tool_calls": False,
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "lookup"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low"},
        "store": True,
        "metadata": {"a": "b"},
        "prompt_cache_key": "k",
        "service_tier": "auto",
        "truncation": "auto",
        "include": ["reasoning.encrypted_content"],
        "user": "u1",
    }
    r = create(gateway, world["key"], **body)
    assert r.status_code == 200, r.text
    sent = fake_upstream.requests()[-1].json
    assert sent["messages"] == [
        {"role": "system", "content": "dev note"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2 and sent["user"] == "u1"
    # fake-gpt is no reasoning model: reasoning_effort is not sent (such models refuse it).
    assert sent["parallel_tool_calls"] is False and "reasoning_effort" not in sent
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert sent["response_format"]["json_schema"]["name"] == "x"
    for dropped in ("store", "metadata", "prompt_cache_key", "service_tier", "include", "input"):
        assert dropped not in sent
    assert r.json()["metadata"] == {"a": "b"}


def test_input_tokens_counts_locally(world: dict[str, Any], gateway: InProcessGateway) -> None:
    body = {"model": "native", "input": "count these few words", "instructions": "Be terse."}
    r = call(gateway, world["key"], "POST", "/v1/responses/input_tokens", body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "response.input_tokens" and 5 < data["input_tokens"] < 40


def test_validation(world: dict[str, Any], gateway: InProcessGateway) -> None:
    r = create(gateway, world["key"], model="compat", input=3)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = call(gateway, world["key"], "POST", "/v1/responses", {"input": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = call(gateway, world["key"], "PUT", "/v1/responses/resp_x")
    assert r.status_code == 405
