"""The official OpenAI SDK against the gateway process, for every provider type.

Each type's instance points at the fake upstream (``mock`` answers inside the gateway), so
these tests cover URL form, auth, body and answer translation (Anthropic), streaming and tool
calls through the real server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import openai
import pytest

from providers.adapters import get_adapter
from tests.e2e.conftest import World
from tests.factories import Instance
from tests.fakes import wire
from tests.fakes.upstream import RecordedRequest

pytestmark = pytest.mark.e2e

TYPES = ["openai", "openai_compatible", "azure_openai", "ollama", "anthropic", "mock"]
ALIAS = "chat-model"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            },
        },
    },
    {"type": "function", "function": {"name": "unused", "parameters": {"type": "object"}}},
]


def require_adapter(provider_type: str) -> None:
    """Fail with a clear message (not a confusing 500) when an adapter does not import."""
    try:
        get_adapter(provider_type)
    except Exception as exc:
        pytest.fail(f"the {provider_type} adapter does not import: {exc!r}", pytrace=False)


@dataclass
class Expect:
    """What the upstream of one type answers (the fake's or the mock adapter's wording)."""

    provider_type: str

    @property
    def via_fake(self) -> bool:
        return self.provider_type != "mock"

    def reply(self, text: str) -> str:
        return wire.echo_reply(text) if self.via_fake else f"Mock reply to: {text}"

    def after_tool(self, result: str) -> str:
        return wire.tool_answer(result) if self.via_fake else f"Tool result: {result}"


@dataclass
class Setup:
    world: World
    instance: Instance
    key: str
    expect: Expect

    def client(self) -> openai.OpenAI:
        return self.world.openai(self.key)

    def upstream_chats(self) -> list[RecordedRequest]:
        return [r for r in self.world.fake.requests() if r.route != "unknown"]


@pytest.fixture(params=TYPES)
def setup(request: pytest.FixtureRequest, e2e: World) -> Setup:
    provider_type: str = request.param
    require_adapter(provider_type)
    instance = e2e.provider(f"inst-{provider_type}", provider_type)
    e2e.mapping(ALIAS, instance)
    key = e2e.vkey([ALIAS])
    e2e.publish()
    return Setup(e2e, instance, key, Expect(provider_type))


def check_upstream_request(setup: Setup, req: RecordedRequest) -> None:
    """The wire form of one upstream request for the instance's type."""
    t = setup.instance.provider.provider_type
    if t == "azure_openai":
        assert req.path == "/openai/deployments/dep-chat/chat/completions"
        assert req.headers["api-key"] == setup.instance.api_key
        assert "authorization" not in req.headers
    elif t == "anthropic":
        assert req.path == "/v1/messages"
        assert req.headers["x-api-key"] == setup.instance.api_key
        assert req.headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in req.headers
        assert req.json["model"] == "claude-fake" and isinstance(req.json["max_tokens"], int)
    else:
        assert req.path == "/v1/chat/completions"
        assert req.json["model"] == "fake-gpt"
        if t == "ollama":  # keyless: no credentials at all
            assert "authorization" not in req.headers
        else:
            assert req.headers["authorization"] == f"Bearer {setup.instance.api_key}"


def test_chat(setup: Setup) -> None:
    completion = setup.client().chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "hello gateway"}]
    )
    assert completion.choices[0].message.content == setup.expect.reply("hello gateway")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    if setup.expect.via_fake:
        [req] = setup.upstream_chats()
        check_upstream_request(setup, req)
        assert req.usage is not None
        assert completion.usage.prompt_tokens == req.usage["prompt_tokens"]
        assert completion.usage.completion_tokens == req.usage["completion_tokens"]
    else:
        assert setup.world.fake.requests() == []
        assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0


@pytest.mark.parametrize("include_usage", [False, True], ids=["no-usage", "usage"])
def test_chat_stream(setup: Setup, include_usage: bool) -> None:
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = setup.client().chat.completions.create(
        model=ALIAS,
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        **kwargs,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == setup.expect.reply("stream me please")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usage_chunks = [c for c in chunks if c.usage is not None]
    if not include_usage:
        assert usage_chunks == []
        return
    # One usage chunk, the last one, with no choices (OpenAI's format).
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert chunks[-1].choices == []
    usage = usage_chunks[0].usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if setup.expect.via_fake:
        [req] = setup.upstream_chats()
        check_upstream_request(setup, req)
        assert req.stream
        if setup.instance.provider.provider_type != "anthropic":
            # The gateway always asks an OpenAI-wire upstream for usage (to count tokens).
            assert req.json["stream_options"]["include_usage"] is True
        assert req.usage is not None
        assert usage.prompt_tokens == req.usage["prompt_tokens"]
        assert usage.completion_tokens == req.usage["completion_tokens"]


def _assemble_stream_tool_call(chunks: list) -> tuple[str, str, str, str | None]:
    call_id = name = arguments = ""
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or []:
            assert call.index == 0
            call_id = call.id or call_id
            if call.function is not None:
                name = call.function.name or name
                arguments += call.function.arguments or ""
    return call_id, name, arguments, finish


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tool_call_round_trip(setup: Setup, stream: bool) -> None:
    client = setup.client()
    messages: list[dict] = [{"role": "user", "content": "weather in Paris"}]
    if stream:
        chunks = list(
            client.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS, stream=True)
        )
        call_id, name, arguments, finish = _assemble_stream_tool_call(chunks)
    else:
        first = client.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS)
        finish = first.choices[0].finish_reason
        [call] = first.choices[0].message.tool_calls or []
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert finish == "tool_calls"
    assert name == "get_weather" and call_id
    assert json.loads(arguments) == {"input": "weather in Paris"}

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    final = client.chat.completions.create(model=ALIAS, messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == setup.expect.after_tool("sunny, 21 C")
    assert final.choices[0].finish_reason == "stop"
    if setup.expect.via_fake:
        reqs = setup.upstream_chats()
        assert len(reqs) == 2
        for req in reqs:
            check_upstream_request(setup, req)


@pytest.mark.parametrize("provider_type", ["openai", "azure_openai", "openai_compatible", "mock"])
def test_embeddings(e2e: World, provider_type: str) -> None:
    instance = e2e.provider(f"emb-{provider_type}", provider_type)
    model = {"azure_openai": "dep-embed", "mock": "mock-embed"}.get(provider_type, "fake-embed")
    e2e.mapping("embed", instance, model, supports_chat=False, supports_embeddings=True)
    key = e2e.vkey(["embed"])
    e2e.publish()
    result = e2e.openai(key).embeddings.create(
        model="embed", input=["first text", "second one here"], encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) > 0 for d in result.data)
    if provider_type == "mock":
        return
    [req] = e2e.fake.requests()
    assert req.route == (
        "azure_embeddings" if provider_type == "azure_openai" else "openai_embeddings"
    )
    if provider_type == "azure_openai":
        assert req.path == "/openai/deployments/dep-embed/embeddings"
        assert req.query == {"api-version": "2024-10-21"}
    else:
        assert req.json["model"] == "fake-embed"
    assert req.json["input"] == ["first text", "second one here"]
    assert result.usage.prompt_tokens == req.usage["prompt_tokens"] == 5


def test_embeddings_refused_for_chat_only_alias(e2e: World) -> None:
    instance = e2e.provider("chat-only", "openai")
    # Declared: an undeclared capability is not checked (the upstream decides).
    e2e.mapping("chat-only", instance, supports_embeddings=False)
    key = e2e.vkey()
    e2e.publish()
    with pytest.raises(openai.BadRequestError) as info:
        e2e.openai(key).embeddings.create(model="chat-only", input="x")
    assert info.value.body["code"] == "unsupported_capability"  # type: ignore[index]
    assert e2e.fake.requests() == []


def test_models_list_and_retrieve_only_allowed_aliases(e2e: World) -> None:
    instance = e2e.provider("models-inst", "openai")
    for alias in ("alpha", "beta", "gamma"):
        e2e.mapping(alias, instance)
    limited = e2e.vkey(["alpha", "gamma", "not-configured"])
    everything = e2e.vkey()
    e2e.publish()
    client = e2e.openai(limited)
    assert [m.id for m in client.models.list()] == ["alpha", "gamma"]
    assert client.models.retrieve("gamma").id == "gamma"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("beta")  # exists, but not for this key
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("not-configured")  # allowed, but no mapping
    all_ids = [m.id for m in e2e.openai(everything).models.list()]
    assert {"alpha", "beta", "gamma"} <= set(all_ids)
    assert e2e.fake.requests() == []  # answered from the route table, no upstream call
