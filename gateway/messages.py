"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's API in front of any
provider instance.

The requested model goes through the tier rules (an alias as is, else a Claude name by
pattern/default tier) to an alias; the alias's candidates go through the same plan and attempt
loop as chat completions (strategy, limits, circuit breaker, retries, failover before the first
byte). Per candidate the request is built natively for ``anthropic`` instances (body relayed with
the instance's model, answer relayed as is) and translated for OpenAI-type ones (request to
chat completions, answer and stream back to Messages). Usage is emitted with endpoint
``messages``, attributed to the serving instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from gateway.api.errors import GatewayError
from gateway.attempts import RequestContext, _attempt, _upstream_error, finish
from gateway.pipeline import plan, resolve
from gateway.relay import (
    ProxyResult,
    _awaitable,
    _gateway_headers,
    _parse_or_fail,
    _prefetch,
    _relay,
    emit_failure,
    json_result,
)
from gateway.routing.selection import KeyCursor
from gateway.routing.table import Candidate, RouteTable
from gateway.token_count import count_anthropic_request
from providers import http
from providers.adapters import UnsupportedOperation, Usage, get_adapter
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.anthropic.front_door import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from providers.adapters.anthropic.front_door_stream import OpenAIToAnthropicStream
from providers.adapters.anthropic.passthrough import (
    AnthropicPassthroughStream,
    native_response_usage,
)
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest
from providers.snapshot import KeySnapshot

_STREAM_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def _invalid(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, code="invalid_request_error", param=param)


def validate_messages(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """The checks Anthropic's API makes before anything is sent (400 invalid_request_error)."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise _invalid("model: Field required", "model")
    if not count_only:
        tokens = body.get("max_tokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise _invalid("max_tokens: Field required (an integer)", "max_tokens")
        if tokens < 1:
            raise _invalid("max_tokens: must be at least 1", "max_tokens")
        if "stream" in body and not isinstance(body["stream"], bool):
            raise _invalid("stream: must be true or false", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'", "messages")
        if not isinstance(message.get("content"), str | list):
            raise _invalid(f"messages.{i}.content: Field required", "messages")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: must be a string or a list of text blocks", "system")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _invalid("tools: must be a list", "tools")
    return body


def resolve_alias(table: RouteTable, requested: str) -> str:
    """The alias serving ``requested`` (exact alias, else tier rules), or 404."""
    alias = table.tiers.alias_for(requested, table.aliases)
    if alias is None:
        raise GatewayError(404, f"model: {requested}", code="model_not_found", param="model")
    return alias


def _translated(body: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return anthropic_request_to_openai(body)
    except UnsupportedOperation as exc:
        raise _invalid(str(exc)) from None


def _clamped(value: Any, candidate: Candidate) -> Any:
    """``max_tokens`` above the mapping's ``max_output_tokens`` becomes that limit."""
    limit = candidate.max_output_tokens
    if limit and isinstance(value, int) and value > limit:
        return limit
    return value


def anthropic_error_event(error: GatewayError) -> bytes:
    return b"event: error\ndata: " + error.anthropic_body() + b"\n\n"


async def messages(table: RouteTable, ctx: RequestContext, body: dict[str, Any]) -> ProxyResult:
    """Serve a Messages API request (streaming or not) for an authenticated caller."""
    requested = str(body["model"])
    alias = resolve_alias(table, requested)
    stream = bool(body.get("stream"))
    try:
        openai_body: dict[str, Any] | None = anthropic_request_to_openai(body)
        untranslatable = ""
    except UnsupportedOperation as exc:
        # Only OpenAI-type instances need the translation (server tools, say, go natively to
        # Anthropic); the attempt loop answers 400 if such an instance is tried.
        openai_body, untranslatable = None, str(exc)
    estimate = openai_body or {"messages": [{"role": "user", "content": str(body["messages"])}]}
    try:
        candidates = await plan(
            table,
            ctx,
            alias,
            resolve(table, ctx.vkey, alias, need="chat", stream=stream),
            estimate,
        )

        def build(
            adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
        ) -> UpstreamRequest:
            if isinstance(adapter, AnthropicAdapter):
                native = dict(body)
                native["model"] = candidate.provider_model
                native["max_tokens"] = _clamped(body.get("max_tokens"), candidate)
                return adapter.messages_request(
                    provider=candidate.provider,
                    key=key,
                    body=native,
                    stream=stream,
                    client_headers=ctx.client_headers,
                )
            if openai_body is None:
                raise UnsupportedOperation(untranslatable)
            translated = dict(openai_body)
            if "max_tokens" in translated:
                translated["max_tokens"] = _clamped(translated["max_tokens"], candidate)
            return adapter.chat_request(
                provider=candidate.provider,
                key=key,
                model=candidate.provider_model,
                body=translated,
                stream=stream,
            )

        if not stream:

            def parse(adapter: Adapter, candidate: Candidate, response: httpx.Response) -> Any:
                if isinstance(adapter, AnthropicAdapter):
                    return _parse_or_fail(
                        lambda raw: (raw, native_response_usage(raw)), candidate, response
                    )

                def translate(raw: bytes) -> tuple[bytes, Usage]:
                    payload, usage = adapter.chat_response(raw)
                    answer = openai_response_to_anthropic(orjson.loads(payload), requested)
                    return orjson.dumps(answer), usage

                return _parse_or_fail(translate, candidate, response)

            candidate, key, _response, (payload, usage) = await _attempt(
                ctx, candidates, build, stream=False, open_stream=_awaitable(parse)
            )
            await finish(ctx, usage)
            return json_result(
                ctx, alias=alias, candidate=candidate, key=key, payload=payload, usage=usage
            )

        async def open_stream(
            adapter: Adapter, candidate: Candidate, response: httpx.Response
        ) -> Any:
            translator: StreamTranslator = (
                AnthropicPassthroughStream()
                if isinstance(adapter, AnthropicAdapter)
                else OpenAIToAnthropicStream(model=requested)
            )
            return await _prefetch(adapter, candidate, response, True, translator)

        candidate, key, response, opened = await _attempt(
            ctx, candidates, build, stream=True, open_stream=open_stream
        )
    except GatewayError as error:
        emit_failure(ctx, alias=alias, error=error, stream=stream)
        raise
    translator, events, prefix, ttft = opened
    headers = _gateway_headers(ctx, candidate, key)
    headers.update(_STREAM_HEADERS)
    relay = _relay(
        ctx,
        alias,
        candidate,
        key,
        response,
        translator,
        events,
        prefix,
        ttft,
        render_error=anthropic_error_event,
        broken_tail=b"",
    )
    return ProxyResult(200, headers, stream=relay)


async def count_tokens(table: RouteTable, ctx: RequestContext, body: dict[str, Any]) -> ProxyResult:
    """``{"input_tokens": N}`` for a Messages request, as the target would count it.

    Candidates in the alias's order: an ``anthropic`` instance is asked (its
    ``/v1/messages/count_tokens``); an OpenAI-type one is counted here with its tokenizer. An
    Anthropic instance that fails is skipped for the next candidate."""
    requested = str(body["model"])
    alias = resolve_alias(table, requested)
    candidates = resolve(table, ctx.vkey, alias, need="chat")
    last: GatewayError | None = None
    for candidate in candidates:
        adapter = get_adapter(candidate.provider.provider_type)
        headers = {"content-type": "application/json", "x-request-id": ctx.request_id}
        headers["x-gateway-provider-id"] = str(candidate.provider.id)
        headers["x-gateway-provider-name"] = candidate.provider.name
        if not isinstance(adapter, AnthropicAdapter):
            _translated(body)  # the same 400 as /v1/messages for what cannot be sent
            count = await asyncio.to_thread(
                count_anthropic_request, body, model=candidate.provider_model
            )
            return ProxyResult(200, headers, body=orjson.dumps({"input_tokens": count}))
        native = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
        native["model"] = candidate.provider_model
        key = KeyCursor(candidate.provider.keys).first()
        request = adapter.messages_request(
            provider=candidate.provider,
            key=key,
            body=native,
            stream=False,
            client_headers=ctx.client_headers,
            path="messages/count_tokens",
        )
        try:
            response = await http.send(
                candidate.provider,
                request,
                client_headers=ctx.client_headers,
                deadline=max(0.001, ctx.remaining()),
            )
        except (httpx.TimeoutException, httpx.TransportError):
            last = GatewayError(
                502,
                f"Provider instance '{candidate.provider.name}' could not be reached.",
                code="connect_error",
                provider_id=candidate.provider.id,
            )
            continue
        if response.status_code < 300:
            try:
                count = int(orjson.loads(response.content)["input_tokens"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                last = GatewayError(
                    502,
                    "The provider returned an unreadable response.",
                    code="bad_upstream_response",
                    provider_id=candidate.provider.id,
                )
                continue
            return ProxyResult(200, headers, body=orjson.dumps({"input_tokens": count}))
        error = _upstream_error(adapter, candidate, response.status_code, response.content)
        if response.status_code in (400, 404, 413, 422):
            raise error  # the request is wrong, not the instance
        last = error
    raise last or GatewayError(503, "No provider instance is available for this model.")
