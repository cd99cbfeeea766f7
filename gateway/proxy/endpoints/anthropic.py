"""Anthropic-format endpoints: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

The requested model goes through the tier rules (an alias as is, else a Claude name by
pattern/default tier) to an alias. Per candidate the request is built natively for
``anthropic`` instances (body relayed with the instance's model, answer relayed as is) and
translated for OpenAI-type ones (request to chat completions, answer and stream back to
Messages). Token counts ask an ``anthropic`` instance and count locally, with the target
model's tokenizer, for the others. A translated answer names what its request lost in
``x-gateway-dropped-params``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.core.errors import InvalidRequest
from gateway.proxy.endpoints.base import Call, EndpointSpec, LocalAnswer
from gateway.proxy.render import ANTHROPIC, model_not_found
from gateway.proxy.token_count import count_anthropic_request
from gateway.routing.table import Candidate, RouteTable
from providers.adapters import UnsupportedOperation, get_adapter
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.anthropic.passthrough import (
    AnthropicPassthroughStream,
    native_response_usage,
)
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot
from providers.translators.anthropic_openai import (
    Translation,
    openai_response_to_anthropic,
    translate_request,
)
from providers.translators.anthropic_openai_stream import OpenAIToAnthropicStream
from providers.translators.chained_stream import ChainedStream
from providers.translators.reasoning import is_reasoning_model
from providers.types import ProviderType

#: Response header naming what a translated request left out (comma-separated).
DROPPED_HEADER = "x-gateway-dropped-params"


def _invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request_error", param=param)


def validate_messages(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """Only what routing needs and what the translation could not read (400
    invalid_request_error, in Anthropic's wording).

    Roles, content block types and top-level fields are not checked: the Messages API grows
    them behind betas (``role: "system"`` in ``messages``, ``context_management``, ...), a
    native instance gets the body as sent and judges it, and the translation keeps or drops
    what it does not know.
    """
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise _invalid("model: Field required", "model")
    if not count_only:
        tokens = body.get("max_tokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise _invalid("max_tokens: Field required (an integer)", "max_tokens")
        if "stream" in body and not isinstance(body["stream"], bool):
            raise _invalid("stream: must be true or false", "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be an object", "messages")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: must be a string or a list of text blocks", "system")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _invalid("tools: must be a list", "tools")
    return body


def validate_count(body: Any) -> dict[str, Any]:
    return validate_messages(body, count_only=True)


def resolve_alias(table: RouteTable, requested: str) -> str:
    """The alias serving ``requested`` (exact alias, else tier rules), or 404."""
    alias = table.tiers.alias_for(requested, table.aliases)
    if alias is None:
        raise model_not_found(requested, ANTHROPIC)
    return alias


def _clamped(value: Any, candidate: Candidate) -> Any:
    """``max_tokens`` above the mapping's ``max_output_tokens`` becomes that limit."""
    limit = candidate.max_output_tokens
    if limit and isinstance(value, int) and value > limit:
        return limit
    return value


def _translation(call: Call) -> Translation:
    if not isinstance(call.translation, Translation):
        raise UnsupportedOperation(call.untranslatable)
    return call.translation


def _for_candidate(call: Call, candidate: Candidate) -> tuple[dict[str, Any], list[str]]:
    """The translated body for an OpenAI-type candidate and what was left out for it."""
    reasoning = is_reasoning_model(candidate.provider_model, candidate.supports_reasoning)
    return _translation(call).for_model(reasoning)


def dropped_header(call: Call, candidate: Candidate) -> dict[str, str]:
    """``x-gateway-dropped-params`` on an answer from an OpenAI-type candidate: the request
    fields and content block types its translation left out (none for a native instance,
    which gets the body as sent)."""
    native = get_adapter(candidate.provider.provider_type).messages_native(candidate.provider_model)
    if candidate.provider.provider_type == ProviderType.ANTHROPIC or native:
        return {}
    if call.translation is None:
        return {}
    _, dropped = _for_candidate(call, candidate)
    # Names come from the client's body: escaped to printable ASCII, a header cannot carry
    # more (and a CR/LF in a field name must not end the header).
    names = (name.encode("unicode_escape").decode("ascii") for name in dropped)
    return {DROPPED_HEADER: ", ".join(names)} if dropped else {}


# --- messages ---------------------------------------------------------------------------


def messages_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    requested = str(body["model"])
    call = Call(
        alias=resolve_alias(table, requested),
        body=body,
        stream=bool(body.get("stream")),
        requested=requested,
    )
    try:
        call.translation = translate_request(body)
        call.translated = call.translation.body
    except UnsupportedOperation as exc:
        # Only OpenAI-type instances need the translation (server tools, say, go natively to
        # Anthropic); building for such an instance answers 400 with this reason.
        call.untranslatable = str(exc)
    call.estimate = call.translated or {
        "messages": [{"role": "user", "content": str(body["messages"])}]
    }
    return call


def messages_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> UpstreamRequest:
    if isinstance(adapter, AnthropicAdapter) or adapter.messages_native(candidate.provider_model):
        native = dict(call.body)
        native["model"] = candidate.provider_model
        native["max_tokens"] = _clamped(call.body.get("max_tokens"), candidate)
        return adapter.messages_request(
            provider=candidate.provider,
            key=key,
            body=native,
            stream=call.stream,
            client_headers=call.client_headers,
        )
    translated = dict(_for_candidate(call, candidate)[0])
    for name in ("max_tokens", "max_completion_tokens"):
        if name in translated:
            translated[name] = _clamped(translated[name], candidate)
    return adapter.chat_request(
        provider=candidate.provider,
        key=key,
        model=candidate.provider_model,
        body=translated,
        stream=call.stream,
    )


def messages_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    if isinstance(adapter, AnthropicAdapter) or adapter.native_answer(raw):
        return raw, native_response_usage(raw)
    payload, usage = adapter.chat_response(raw)
    answer = openai_response_to_anthropic(orjson.loads(payload), call.requested)
    return orjson.dumps(answer), usage


def messages_stream(call: Call, adapter: Adapter) -> StreamTranslator:
    if isinstance(adapter, AnthropicAdapter):
        return AnthropicPassthroughStream()
    native = adapter.messages_stream(model=call.requested)
    if native is not None:
        return native
    outer = OpenAIToAnthropicStream(model=call.requested)
    if adapter.openai_wire:
        return outer
    # The upstream's own events (Gemini) become chat chunks first.
    return ChainedStream(adapter.chat_stream(include_usage=True), outer)


MESSAGES = EndpointSpec(
    name="messages",
    error_format=ANTHROPIC,
    need="chat",
    validate=validate_messages,
    prepare=messages_prepare,
    build=messages_build,
    parse=messages_parse,
    stream=messages_stream,
    answer_headers=dropped_header,
)


# --- count_tokens -----------------------------------------------------------------------


def count_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    call = messages_prepare(table, body)
    call.stream = False
    return call


def count_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> UpstreamRequest | LocalAnswer:
    if isinstance(adapter, AnthropicAdapter):
        native = {k: v for k, v in call.body.items() if k not in ("max_tokens", "stream")}
        native["model"] = candidate.provider_model
        return adapter.messages_request(
            provider=candidate.provider,
            key=key,
            body=native,
            stream=False,
            client_headers=call.client_headers,
            path="messages/count_tokens",
        )
    _translation(call)  # the same 400 as /v1/messages for what cannot be sent

    async def count() -> bytes:
        # The tokenizer is CPU work: off the event loop.
        tokens = await asyncio.to_thread(
            count_anthropic_request, call.body, model=candidate.provider_model
        )
        return orjson.dumps({"input_tokens": tokens})

    return LocalAnswer(count)


def count_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    # A count is not a completion: nothing is billed, so no tokens are reported.
    return orjson.dumps({"input_tokens": int(orjson.loads(raw)["input_tokens"])}), Usage()


COUNT_TOKENS = EndpointSpec(
    name="count_tokens",
    error_format=ANTHROPIC,
    need="chat",
    validate=validate_count,
    prepare=count_prepare,
    build=count_build,
    parse=count_parse,
)
