"""The openai and anthropic SDKs through the gateway to a ``vertex_ai`` instance: Gemini models
(generateContent, SSE, ``:predict`` embeddings) and Claude models (rawPredict and
streamRawPredict), with bearer tokens minted from the key's service account by the fake token
endpoint."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import World
from tests.fakes import wire_vertex
from tests.fakes.upstream import Behaviour
from tests.fakes.wire import echo_reply, tool_answer

pytestmark = pytest.mark.e2e

BASE = "/v1/projects/test-project/locations/us-central1"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def vtx(e2e: World) -> str:
    account = wire_vertex.service_account(f"{e2e.fake.url}/token")
    instance = e2e.provider(
        "vertex-main",
        "vertex_ai",
        project="test-project",
        location="us-central1",
        keys=[{"name": "sa-1", "api_key": account, "primary": True}],
    )
    e2e.mapping("vgem", instance, "gemini-fake")
    e2e.mapping("vclaude", instance, "claude-fake@20250101")
    e2e.mapping("vmissing", instance, "missing-model")
    e2e.mapping("vembed", instance, "text-embedding-005", supports_chat=False)
    key = e2e.vkey(["vgem", "vclaude", "vmissing", "vembed"])
    e2e.publish()
    return key


def _upstream(e2e: World) -> list[Any]:
    return [r for r in e2e.fake.requests() if r.route != "vertex_token"]


def test_gemini_chat_stream_tools_with_minted_token(e2e: World, vtx: str) -> None:
    client = e2e.openai(vtx)
    answer = client.chat.completions.create(
        model="vgem", messages=[{"role": "user", "content": "hi vertex"}]
    )
    assert answer.choices[0].message.content == echo_reply("hi vertex")
    [req] = _upstream(e2e)
    assert req.path == f"{BASE}/publishers/google/models/gemini-fake:generateContent"
    assert req.headers["authorization"].startswith("Bearer ya29.fake-")
    assert "private_key" not in json.dumps(req.headers)

    chunks = list(
        client.chat.completions.create(
            model="vgem",
            messages=[{"role": "user", "content": "stream it please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == echo_reply("stream it please")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert _upstream(e2e)[-1].query == {"alt": "sse"}

    first = client.chat.completions.create(
        model="vgem", messages=[{"role": "user", "content": "weather"}], tools=TOOLS
    )
    [call] = first.choices[0].message.tool_calls or []
    final = client.chat.completions.create(
        model="vgem",
        messages=[
            {"role": "user", "content": "weather"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert final.choices[0].message.content == tool_answer("sunny")
    # One token served every request (cached, not minted per call).
    assert len(e2e.fake.requests(route="vertex_token")) == 1


def test_embeddings_through_predict(e2e: World, vtx: str) -> None:
    result = e2e.openai(vtx).embeddings.create(
        model="vembed", input=["one", "two words"], encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 8
    assert result.usage.prompt_tokens == 3
    [req] = _upstream(e2e)
    assert req.path == f"{BASE}/publishers/google/models/text-embedding-005:predict"
    assert req.json == {"instances": [{"content": "one"}, {"content": "two words"}]}


def test_claude_on_vertex_openai_and_anthropic_sdks(e2e: World, vtx: str) -> None:
    answer = e2e.openai(vtx).chat.completions.create(
        model="vclaude", messages=[{"role": "user", "content": "hi claude"}]
    )
    assert answer.choices[0].message.content == echo_reply("hi claude")
    [req] = _upstream(e2e)
    assert req.path == f"{BASE}/publishers/anthropic/models/claude-fake@20250101:rawPredict"
    assert req.json["anthropic_version"] == "vertex-2023-10-16" and "model" not in req.json

    client = anthropic.Anthropic(base_url=e2e.server.url, api_key=vtx, max_retries=0, timeout=20)
    try:
        message = client.messages.create(
            model="vclaude", max_tokens=100, messages=[{"role": "user", "content": "hello"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == echo_reply("hello")
        # Natively: the Messages body as sent, the model in the URL, no translation.
        sent = _upstream(e2e)[-1]
        assert sent.path.endswith("/publishers/anthropic/models/claude-fake@20250101:rawPredict")
        assert sent.json == {
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hello"}],
            "anthropic_version": "vertex-2023-10-16",
        }
        assert message.model == "claude-fake@20250101"
        with client.messages.stream(
            model="vclaude", max_tokens=100, messages=[{"role": "user", "content": "stream on"}]
        ) as stream:
            assert "".join(stream.text_stream) == echo_reply("stream on")
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
        assert _upstream(e2e)[-1].path.endswith(":streamRawPredict")
        # A Gemini model behind the same front: translated both ways.
        with client.messages.stream(
            model="vgem", max_tokens=100, messages=[{"role": "user", "content": "gem stream"}]
        ) as stream:
            assert "".join(stream.text_stream) == echo_reply("gem stream")
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
        assert _upstream(e2e)[-1].path.endswith("gemini-fake:streamGenerateContent")
    finally:
        client.close()


def test_missing_model_404_typed_errors_and_bad_account(e2e: World, vtx: str) -> None:
    client = e2e.openai(vtx)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="vmissing", messages=[{"role": "user", "content": "x"}]
        )
    assert "was not found" in str(exc.value)
    assert len(_upstream(e2e)) == 1
    e2e.fake.behave(Behaviour.fail(429))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="vgem", messages=[{"role": "user", "content": "x"}])


def test_refused_token_fails_over_to_the_next_key(e2e: World) -> None:
    # The first account's key is not the one the token endpoint knows: its JWT is refused.
    stranger = wire_vertex.service_account(f"{e2e.fake.url}/token", email="x@other.iam")
    good = wire_vertex.service_account(f"{e2e.fake.url}/token", email="good@p.iam")
    stranger = stranger.replace("x@other.iam", "unknown@other.iam")
    instance = e2e.provider(
        "vertex-two",
        "vertex_ai",
        project="test-project",
        location="us-central1",
        keys=[
            {"name": "sa-bad", "api_key": stranger, "primary": True},
            {"name": "sa-good", "api_key": good, "account_group": 1},
        ],
    )
    e2e.mapping("v2", instance, "gemini-fake")
    key = e2e.vkey(["v2"])
    e2e.publish()
    answer = e2e.openai(key).chat.completions.create(
        model="v2", messages=[{"role": "user", "content": "fail over"}]
    )
    assert answer.choices[0].message.content == echo_reply("fail over")
    assert [r.status for r in e2e.fake.requests(route="vertex_token")] == [400, 200]
    assert len(_upstream(e2e)) == 1


def test_responses_api_translated_through_chat(e2e: World, vtx: str) -> None:
    client = e2e.openai(vtx)
    for alias in ("vgem", "vclaude"):
        response = client.responses.create(model=alias, input=f"hello {alias}")
        assert response.output_text == echo_reply(f"hello {alias}")
        events = list(client.responses.create(model=alias, input="stream it", stream=True))
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == echo_reply("stream it")
