"""OpenAI-format endpoints: ``POST /v1/chat/completions`` and ``POST /v1/embeddings``.

The body goes to every provider type through its adapter (passed through for OpenAI-wire
instances, translated for the others); answers and streams come back in OpenAI's format.
"""

from __future__ import annotations

from typing import Any

from gateway.proxy.endpoints.base import Call, EndpointSpec
from gateway.proxy.render import OPENAI
from gateway.proxy.validation import validate_chat, validate_embeddings
from gateway.routing.table import Candidate, RouteTable
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return bool(isinstance(options, dict) and options.get("include_usage"))


# --- chat completions -------------------------------------------------------------------


def chat_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    return Call(
        alias=body["model"],
        body=body,
        stream=bool(body.get("stream")),
        estimate=body,
        include_usage=_wants_usage(body),
    )


def chat_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> UpstreamRequest:
    return adapter.chat_request(
        provider=candidate.provider,
        key=key,
        model=candidate.provider_model,
        body=call.body,
        stream=call.stream,
    )


def chat_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    return adapter.chat_response(raw)


def chat_stream(call: Call, adapter: Adapter) -> StreamTranslator:
    return adapter.chat_stream(include_usage=call.include_usage)


CHAT = EndpointSpec(
    name="chat",
    error_format=OPENAI,
    need="chat",
    validate=validate_chat,
    prepare=chat_prepare,
    build=chat_build,
    parse=chat_parse,
    stream=chat_stream,
    broken_tail=b"data: [DONE]\n\n",
)


# --- embeddings -------------------------------------------------------------------------


def embeddings_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    return Call(alias=body["model"], body=body, estimate=body)


def embeddings_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> UpstreamRequest:
    return adapter.embeddings_request(
        provider=candidate.provider, key=key, model=candidate.provider_model, body=call.body
    )


def embeddings_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    return adapter.embeddings_response(raw)


EMBEDDINGS = EndpointSpec(
    name="embeddings",
    error_format=OPENAI,
    need="embeddings",
    validate=validate_embeddings,
    prepare=embeddings_prepare,
    build=embeddings_build,
    parse=embeddings_parse,
)
