"""Spans of /v1 requests: the tree, GenAI attributes, usage, and the traceparent upstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.proxy import tracing
from gateway.routing.table import RouteTable
from tests.factories import Instance, make_mapping, make_provider, make_vkey
from tests.fakes import wire
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"
PROMPT = "the secret recipe is paprika"


def post(
    gateway: InProcessGateway,
    key: str,
    body: dict,
    headers: dict[str, str] | None = None,
    path: str = "/v1/chat/completions",
) -> Any:
    async def call(client: Any) -> Any:
        return await client.post(
            path, json=body, headers={"authorization": f"Bearer {key}", **(headers or {})}
        )

    return gateway.run(call)


def chat(model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], **extra}


def tree(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The one SERVER span and its CLIENT children, in start order."""
    done = exporter.get_finished_spans()
    [server] = [s for s in done if s.kind is SpanKind.SERVER]
    children = sorted((s for s in done if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time)
    assert len(done) == 1 + len(children)
    for child in children:
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id
    return server, children


def traceparent_of(span: ReadableSpan) -> str:
    c = span.context
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


@pytest.fixture
def one(
    install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream
) -> tuple[Instance, str]:
    inst = make_provider(
        "traced",
        upstream_url=fake_upstream.url,
        keys=[{"name": "primary", "primary": True, "account_group": 4}],
        forward_headers=["traceparent", "tracestate"],
    )
    make_mapping("m", inst, "fake-gpt")
    vkey = make_vkey("trace-app")
    install_table()
    return inst, vkey.plaintext


def test_chat_span_tree_attributes_and_traceparent_upstream(
    one: tuple[Instance, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
) -> None:
    inst, key = one
    response = post(gateway, key, chat(), {"traceparent": TRACEPARENT, "tracestate": "k=v"})
    assert response.status_code == 200
    server, [attempt] = tree(spans)
    # The client's trace continues through the gateway.
    assert server.context.trace_id == int(CLIENT_TRACE, 16)
    assert server.parent is not None and server.parent.span_id == int(CLIENT_PARENT, 16)
    assert server.name == "chat m" and attempt.name == "chat fake-gpt"
    # The upstream got the attempt's context (not the client's, which it allow-lists).
    [received] = fake_upstream.requests()
    assert received.headers["traceparent"] == traceparent_of(attempt)
    assert received.headers["tracestate"] == "k=v"
    assert received.usage is not None
    s, a = server.attributes or {}, attempt.attributes or {}
    assert s["gen_ai.operation.name"] == "chat" and s["gen_ai.request.model"] == "m"
    assert s["gen_ai.response.model"] == "fake-gpt"
    assert s["gen_ai.provider.name"] == "openai"
    assert s["gen_ai.usage.input_tokens"] == received.usage["prompt_tokens"]
    assert s["gen_ai.usage.output_tokens"] == received.usage["completion_tokens"]
    assert s["gateway.provider_instance.id"] == inst.id
    assert s["gateway.provider_instance.name"] == "traced"
    assert s["gateway.account_group"] == 4
    assert s["gateway.request_id"] == response.headers["x-request-id"]
    assert s["http.response.status_code"] == 200 and "error.type" not in s
    assert a["gateway.attempt.outcome"] == "ok" and a["http.response.status_code"] == 200
    assert a["gen_ai.request.model"] == "fake-gpt"
    assert a["gen_ai.usage.output_tokens"] == received.usage["completion_tokens"]
    # Nothing of the conversation, no key, no header by default.
    for span in (server, attempt):
        text = orjson.dumps(dict(span.attributes or {})).decode()
        assert PROMPT not in text and "Echo" not in text
        assert inst.api_keys["primary"] not in text and key not in text
        assert not any(name.startswith(("gen_ai.input", "gen_ai.output")) for name in text)


@pytest.mark.parametrize("stream", [False, True])
def test_response_model_is_the_one_the_reply_names(
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
    stream: bool,
) -> None:
    """OpenAI answers the alias ``gpt-4o`` with its dated snapshot: the span says which one
    served (whole answers and streams), while the request model stays what was asked."""
    make_mapping("m", make_provider("snap", upstream_url=fake_upstream.url), "gpt-4o")
    key = make_vkey().plaintext
    install_table()
    response = post(gateway, key, chat(stream=stream))
    assert response.status_code == 200
    assert fake_upstream.requests()[0].json["model"] == "gpt-4o"
    server, [attempt] = tree(spans)
    for span in (server, attempt):
        assert (span.attributes or {})["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert (attempt.attributes or {})["gen_ai.request.model"] == "gpt-4o"


def test_failover_shows_two_attempt_spans_with_outcomes(
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
) -> None:
    a = make_provider("a", upstream_url=fake_upstream.url)
    b = make_provider("b", upstream_url=fake_upstream.url, provider_type="anthropic")
    make_mapping("m", a, "fake-gpt", priority=1)
    make_mapping("m", b, "claude-fake", priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(503), key=a.api_keys["primary"])
    assert post(gateway, key, chat()).status_code == 200
    server, [first, second] = tree(spans)
    f, s = first.attributes or {}, second.attributes or {}
    assert (f["gateway.provider_instance.id"], f["gateway.attempt.outcome"]) == (a.id, "retryable")
    assert f["http.response.status_code"] == 503 and f["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert (s["gateway.provider_instance.id"], s["gateway.attempt.outcome"]) == (b.id, "ok")
    assert s["gen_ai.provider.name"] == "anthropic"
    # Each upstream saw its own attempt's context.
    [to_a] = fake_upstream.requests(key=a.api_keys["primary"])
    [to_b] = fake_upstream.requests(key=b.api_keys["primary"])
    assert to_a.headers["traceparent"] == traceparent_of(first)
    assert to_b.headers["traceparent"] == traceparent_of(second)
    assert (server.attributes or {})["gateway.attempts"] == 2


def test_transport_failure_is_a_transport_attempt(
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
) -> None:
    a = make_provider("a", upstream_url=fake_upstream.url)
    b = make_provider("b", upstream_url=fake_upstream.url)
    make_mapping("m", a, "fake-gpt", priority=1)
    make_mapping("m", b, "fake-gpt", priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour(mode="reset"), key=a.api_keys["primary"])
    assert post(gateway, key, chat()).status_code == 200
    _, [first, second] = tree(spans)
    f = first.attributes or {}
    assert f["gateway.attempt.outcome"] == "transport" and f["error.type"] == "connect_error"
    assert "http.response.status_code" not in f
    assert (second.attributes or {})["gateway.attempt.outcome"] == "ok"


def test_auth_failure_of_every_key_is_an_error_span(
    one: tuple[Instance, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
) -> None:
    _, key = one
    fake_upstream.behave(Behaviour.fail(401))
    response = post(gateway, key, chat())
    assert response.status_code >= 400
    server, [attempt] = tree(spans)
    assert (attempt.attributes or {})["gateway.attempt.outcome"] == "auth"
    s = server.attributes or {}
    assert s["http.response.status_code"] == response.status_code
    assert s["error.type"]


def test_stream_span_ends_with_the_stream_and_carries_usage(
    one: tuple[Instance, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    spans: InMemorySpanExporter,
) -> None:
    _, key = one
    response = post(gateway, key, chat(stream=True))
    assert response.status_code == 200 and "data: [DONE]" in response.text
    server, [attempt] = tree(spans)
    [received] = fake_upstream.requests()
    assert received.stream and received.usage is not None
    s = server.attributes or {}
    assert s["gateway.stream"] is True and s["http.response.status_code"] == 200
    assert s["gen_ai.usage.input_tokens"] == received.usage["prompt_tokens"]
    assert s["gen_ai.usage.output_tokens"] == received.usage["completion_tokens"] > 0
    assert (attempt.attributes or {})["gen_ai.usage.output_tokens"] == s[
        "gen_ai.usage.output_tokens"
    ]
    assert attempt.end_time is not None and server.end_time is not None
    assert attempt.end_time <= server.end_time


def test_message_content_only_when_the_switch_is_on(
    one: tuple[Instance, str], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _, key = one
    exporter = InMemorySpanExporter()
    tracing.tracing_setup(exporter, env={tracing.CONTENT_SETTING: "true"}, batch=False)
    try:
        assert post(gateway, key, chat()).status_code == 200
    finally:
        tracing.tracing_shutdown()
    server, _ = tree(exporter)
    s = server.attributes or {}
    assert PROMPT in str(s["gen_ai.input.messages"])
    assert "Echo: " + PROMPT in str(s["gen_ai.output.messages"])


def test_off_no_spans_and_traceparent_passes_as_before(
    one: tuple[Instance, str],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    tracing_off: None,
) -> None:
    inst, key = one
    other = make_provider("plain", upstream_url=fake_upstream.url)
    make_mapping("n", other, "fake-gpt")
    install_table()
    exporter = InMemorySpanExporter()  # attached to nothing: tracing is off
    headers = {"traceparent": TRACEPARENT}
    assert post(gateway, key, chat("m"), headers).status_code == 200
    assert post(gateway, key, chat("n"), headers).status_code == 200
    forwarded = fake_upstream.requests(key=inst.api_keys["primary"])[0]
    not_forwarded = fake_upstream.requests(key=other.api_keys["primary"])[0]
    # Allow-listed: the client's own header, untouched; not allow-listed: none added.
    assert forwarded.headers["traceparent"] == TRACEPARENT
    assert "traceparent" not in not_forwarded.headers
    assert exporter.get_finished_spans() == ()


def captured_output(gateway: InProcessGateway, key: str, path: str, body: dict) -> Any:
    """``gen_ai.output.messages`` of one request with content capture on."""
    exporter = InMemorySpanExporter()
    tracing.tracing_setup(exporter, env={tracing.CONTENT_SETTING: "true"}, batch=False)
    try:
        assert post(gateway, key, body, path=path).status_code == 200
    finally:
        tracing.tracing_shutdown()
    server, _ = tree(exporter)
    return orjson.loads((server.attributes or {})["gen_ai.output.messages"])


def test_streamed_content_is_captured_like_the_whole_answer(
    one: tuple[Instance, str], gateway: InProcessGateway
) -> None:
    """With capture on, a stream's output on the span is the whole answer's, in each client
    format: chat ``choices`` (tool calls too), Messages ``content`` blocks (here translated
    from chat chunks), Responses ``output`` items."""
    _, key = one
    path = "/v1/chat/completions"
    [whole] = captured_output(gateway, key, path, chat())
    [streamed] = captured_output(gateway, key, path, chat(stream=True))
    assert streamed["message"] == {"role": "assistant", "content": "Echo: " + PROMPT}
    assert streamed["message"]["content"] == whole["message"]["content"]
    assert streamed["finish_reason"] == whole["finish_reason"] == "stop"

    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    [choice] = captured_output(gateway, key, path, chat(stream=True, tools=tools))
    [call] = choice["message"]["tool_calls"]
    expected = wire.decide_openai(chat(tools=tools))
    assert call["function"]["name"] == "lookup" and call["id"]
    assert orjson.loads(call["function"]["arguments"]) == orjson.loads(expected.tool_args or "")
    assert choice["finish_reason"] == "tool_calls"

    messages = {"model": "m", "max_tokens": 50, "messages": chat()["messages"], "stream": True}
    assert captured_output(gateway, key, "/v1/messages", messages) == [
        {"type": "text", "text": "Echo: " + PROMPT}
    ]
    responses = {"model": "m", "input": PROMPT, "stream": True}
    output = captured_output(gateway, key, "/v1/responses", responses)
    texts = [c["text"] for item in output for c in item.get("content", [])]
    assert texts == ["Echo: " + PROMPT]


def test_reads_get_a_plain_http_span_named_by_route(
    one: tuple[Instance, str], gateway: InProcessGateway, spans: InMemorySpanExporter
) -> None:
    """The model list and a model's entry are answered from the route table: a SERVER span
    each, named by method and route template (never the id), no GenAI operation."""
    _, key = one
    from gateway.keys.models import VirtualKey

    reader = VirtualKey.objects.get(name="trace-app").id

    async def call(client: Any) -> list[int]:
        auth = {"authorization": f"Bearer {key}", "traceparent": TRACEPARENT}
        return [
            (await client.get("/v1/models", headers=auth)).status_code,
            (await client.get("/v1/models/m", headers=auth)).status_code,
            (await client.get("/v1/models", headers={"authorization": "Bearer sk-no"})).status_code,
        ]

    assert gateway.run(call) == [200, 200, 401]
    done = sorted(spans.get_finished_spans(), key=lambda s: s.start_time or 0)
    assert [s.name for s in done] == ["GET /v1/models", "GET /v1/models/{id}", "GET /v1/models"]
    assert all(s.kind is SpanKind.SERVER for s in done)
    listed, entry, refused = (dict(s.attributes or {}) for s in done)
    assert done[0].context.trace_id == int(CLIENT_TRACE, 16)
    assert listed["http.route"] == "/v1/models" and listed["http.response.status_code"] == 200
    assert entry["http.route"] == "/v1/models/{id}"
    assert listed["gateway.virtual_key.id"] == entry["gateway.virtual_key.id"] == reader
    assert refused["http.response.status_code"] == 401 and "gateway.virtual_key.id" not in refused
    assert refused["error.type"]
    for attributes in (listed, entry, refused):
        assert not any(name.startswith("gen_ai.") for name in attributes)
        assert key not in orjson.dumps(attributes).decode()
