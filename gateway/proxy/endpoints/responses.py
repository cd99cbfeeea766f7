"""OpenAI Responses API: ``POST /v1/responses``, ``POST /v1/responses/input_tokens`` and
``GET``/``DELETE /v1/responses/{id}`` (plus ``GET /v1/responses/{id}/input_items``).

Per candidate the request goes natively to instances whose upstream serves the Responses API
(``openai``, ``azure_openai``: body relayed with the instance's model, answer relayed as is)
and is translated through chat completions for every other type (the translators in
``providers.translators.responses_openai_*``; an ``anthropic`` instance then translates the
chat request to Messages as its chat path always does). Built-in tools cannot be translated:
when no candidate is native they are refused (400, ``param: "tools"``) before anything is sent.

The response store (:mod:`gateway.responses_store.store`) keeps answers unless ``store`` is
false: ``previous_response_id`` is resolved from it for translated candidates (natives get the
id as is), and ``GET``/``DELETE`` read it. Writes happen once an answer completed, before its
last bytes go out, never before the first.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.core.errors import InvalidRequest, NotFound
from gateway.proxy.context import RequestContext
from gateway.proxy.endpoints.base import Call, EndpointSpec, LocalAnswer
from gateway.proxy.render import OPENAI
from gateway.proxy.token_count import count_openai_request
from gateway.responses_store import store
from gateway.routing.table import Candidate, RouteTable, VirtualKeySnapshot
from providers.adapters import UnsupportedOperation, get_adapter
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.adapters.openai_responses import ResponsesPassthroughStream, native_response_usage
from providers.snapshot import KeySnapshot
from providers.translators.reasoning import is_reasoning_model
from providers.translators.responses_openai_request import (
    UnsupportedTool,
    input_items,
    responses_request_to_chat,
)
from providers.translators.responses_openai_response import chat_to_response, new_id
from providers.translators.responses_openai_stream import ChatToResponsesStream

#: Chat targets that may serve reasoning models: ``reasoning.effort`` goes to them as
#: ``reasoning_effort`` when the model takes it (the mapping's ``reasoning`` capability, else
#: its name); the anthropic chat translation has its own mapping, the mock ignores it.
_EFFORT_TYPES = frozenset({"openai_compatible", "ollama"})


def _bad(message: str, param: str | None, code: str = "invalid_type") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def validate_responses(body: Any) -> dict[str, Any]:
    """Shape checks only; the upstream judges the rest."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_body")
    model = body.get("model")
    if model is None:
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string.", "model")
    if body.get("input") is not None and not isinstance(body["input"], str | list):
        raise _bad("'input' must be a string or an array of input items.", "input")
    for name, kind, what in (
        ("stream", bool, "a boolean"),
        ("store", bool, "a boolean"),
        ("tools", list, "an array"),
        ("instructions", str, "a string"),
        ("previous_response_id", str, "a string"),
    ):
        if body.get(name) is not None and not isinstance(body[name], kind):
            raise _bad(f"'{name}' must be {what}.", name)
    tokens = body.get("max_output_tokens")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool)):
        raise _bad("'max_output_tokens' must be an integer.", "max_output_tokens")
    return body


def _native(candidate: Candidate) -> bool:
    return get_adapter(candidate.provider.provider_type).responses_native


def _refusal(exc: UnsupportedOperation) -> InvalidRequest:
    if isinstance(exc, UnsupportedTool):
        return InvalidRequest(str(exc), code="unsupported_tool", param="tools")
    return InvalidRequest(str(exc), code="unsupported_parameter", param="input")


def _translate(call: Call, history: list[dict[str, Any]]) -> None:
    try:
        call.translated = responses_request_to_chat(call.body, history=history)
    except UnsupportedOperation as exc:
        call.translated = None
        call.extra["refusal"] = _refusal(exc)
        if not call.extra["any_native"]:
            raise call.extra["refusal"] from None  # before anything is sent anywhere
    call.estimate = call.translated or {
        "messages": [{"role": "user", "content": orjson.dumps(call.body.get("input")).decode()}]
    }


def _prepare(table: RouteTable, body: dict[str, Any], *, local: bool) -> Call:
    call = Call(alias=body["model"], body=body, requested=body["model"])
    candidates = table.candidates(call.alias)
    # Counting tokens is local for every type: it is translated like a chat target.
    call.extra["any_native"] = not local and any(_native(c) for c in candidates)
    call.extra["any_translated"] = local or not all(_native(c) for c in candidates)
    call.extra["response_id"] = new_id("resp")
    if candidates:
        _translate(call, [])
    return call


def responses_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    call = _prepare(table, body, local=False)
    call.stream = bool(body.get("stream"))
    return call


async def responses_load(call: Call, ctx: RequestContext) -> None:
    """Resolve ``previous_response_id`` from the store for translated candidates."""
    previous = call.body.get("previous_response_id")
    if not previous or not call.extra["any_translated"]:
        return
    record = await store.load(previous, ctx.vkey.id)
    if record is None:
        call.extra["missing"] = _previous_not_found(previous)
        if not call.extra["any_native"]:
            raise call.extra["missing"]
        return
    call.extra["history"] = record.conversation()
    _translate(call, call.extra["history"])


def _previous_not_found(response_id: str) -> NotFound:
    return NotFound(
        f"Previous response with id '{response_id}' not found.",
        code="previous_response_not_found",
        param="previous_response_id",
    )


def _clamped(value: Any, candidate: Candidate) -> Any:
    limit = candidate.max_output_tokens
    if limit and isinstance(value, int) and value > limit:
        return limit
    return value


def _chat_body(call: Call, candidate: Candidate) -> dict[str, Any]:
    """The translated body for this candidate (or the reason it cannot have one)."""
    if "missing" in call.extra:
        raise call.extra["missing"]
    if call.translated is None:
        raise call.extra.get("refusal") or InvalidRequest("This request cannot be translated.")
    body = dict(call.translated)
    if "max_tokens" in body:
        body["max_tokens"] = _clamped(body["max_tokens"], candidate)
    if candidate.provider.provider_type not in _EFFORT_TYPES or not is_reasoning_model(
        candidate.provider_model, candidate.supports_reasoning
    ):
        body.pop("reasoning_effort", None)
    elif "max_tokens" in body:
        # Reasoning models refuse max_tokens; they take max_completion_tokens.
        body["max_completion_tokens"] = body.pop("max_tokens")
    return body


def responses_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> UpstreamRequest:
    if adapter.responses_native:
        body = dict(call.body)
        if body.get("max_output_tokens") is not None:
            body["max_output_tokens"] = _clamped(body["max_output_tokens"], candidate)
        return adapter.responses_request(
            provider=candidate.provider,
            key=key,
            model=candidate.provider_model,
            body=body,
            stream=call.stream,
        )
    return adapter.chat_request(
        provider=candidate.provider,
        key=key,
        model=candidate.provider_model,
        body=_chat_body(call, candidate),
        stream=call.stream,
    )


def responses_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    if adapter.responses_native:
        return raw, native_response_usage(raw)
    payload, usage = adapter.chat_response(raw)
    response = chat_to_response(
        orjson.loads(payload), call.body, response_id=call.extra["response_id"], usage=usage
    )
    return orjson.dumps(response), usage


def responses_stream(call: Call, adapter: Adapter) -> StreamTranslator:
    if adapter.responses_native:
        return ResponsesPassthroughStream()
    # OpenAI-wire upstreams send chat chunks; the others' own events become chat chunks first.
    inner = None if adapter.openai_wire else adapter.chat_stream(include_usage=True)
    return ChatToResponsesStream(
        request=call.body, response_id=call.extra["response_id"], inner=inner
    )


async def _remember(call: Call, ctx: RequestContext, response: Any) -> None:
    """Store a completed response (unless ``store`` is false) with the items it answered."""
    if call.body.get("store") is False or not isinstance(response, dict):
        return
    response_id = response.get("id")
    if not isinstance(response_id, str) or not response_id:
        return
    history = call.extra.get("history")
    previous = call.body.get("previous_response_id")
    if history is None and previous:
        # Served natively: the history was never needed before; read it now, after the answer.
        record = await store.load(previous, ctx.vkey.id)
        history = record.conversation() if record is not None else []
    items = [*(history or []), *input_items(call.body)]
    # Shielded: a client going away now must not lose the record of an answer it was sent.
    await asyncio.shield(store.save(response_id, ctx.vkey.id, store.Record(response, items)))


async def responses_after_answer(call: Call, ctx: RequestContext, payload: bytes) -> None:
    if call.body.get("store") is not False:  # not even parsed otherwise
        await _remember(call, ctx, orjson.loads(payload))


async def responses_after_stream(
    call: Call, ctx: RequestContext, translator: StreamTranslator
) -> None:
    if isinstance(translator, ResponsesPassthroughStream):
        await _remember(call, ctx, translator.final)
    elif isinstance(translator, ChatToResponsesStream):
        await _remember(call, ctx, translator.response())


RESPONSES = EndpointSpec(
    name="responses",
    error_format=OPENAI,
    need="chat",
    validate=validate_responses,
    prepare=responses_prepare,
    build=responses_build,
    parse=responses_parse,
    stream=responses_stream,
    load=responses_load,
    after_answer=responses_after_answer,
    after_stream=responses_after_stream,
)


# --- input_tokens -----------------------------------------------------------------------------


def input_tokens_prepare(table: RouteTable, body: dict[str, Any]) -> Call:
    return _prepare(table, body, local=True)


def input_tokens_build(
    call: Call, adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
) -> LocalAnswer:
    chat = _chat_body(call, candidate)

    async def count() -> bytes:
        # The tokenizer is CPU work: off the event loop.
        tokens = await asyncio.to_thread(count_openai_request, chat, model=candidate.provider_model)
        return orjson.dumps({"object": "response.input_tokens", "input_tokens": tokens})

    return LocalAnswer(count)


def input_tokens_parse(call: Call, adapter: Adapter, raw: bytes) -> tuple[bytes, Usage]:
    return raw, Usage()  # a count is not a completion: nothing is billed


RESPONSES_INPUT_TOKENS = EndpointSpec(
    name="responses_input_tokens",
    error_format=OPENAI,
    need="chat",
    validate=validate_responses,
    prepare=input_tokens_prepare,
    build=input_tokens_build,
    parse=input_tokens_parse,
    load=responses_load,
)


# --- stored responses -------------------------------------------------------------------------


def _response_not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")


def _with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as OpenAI lists them: each with an id (a stored one, else made up)."""
    out = []
    for n, item in enumerate(items):
        kind = str(item.get("type") or "message")
        out.append({"id": item.get("id") or f"{kind[:3]}_{n:04d}", "type": kind, **item})
    return out


async def get_response(
    table: RouteTable, vkey: VirtualKeySnapshot, query: dict[str, list[str]], rest: str
) -> dict[str, Any]:
    """``GET /v1/responses/{id}`` (and ``/{id}/input_items``), this key's records only."""
    response_id, _, sub = rest.partition("/")
    record = await store.load(response_id, vkey.id) if response_id else None
    if record is None or sub not in ("", "input_items"):
        raise _response_not_found(response_id)
    if not sub:
        return record.response
    items = _with_ids(record.items)
    if (query.get("order") or ["desc"])[0] != "asc":
        items.reverse()
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
    }


async def delete_response(
    table: RouteTable, vkey: VirtualKeySnapshot, query: dict[str, list[str]], rest: str
) -> dict[str, Any]:
    """``DELETE /v1/responses/{id}``: this key's record only."""
    if not rest or "/" in rest or not await store.delete(rest, vkey.id):
        raise _response_not_found(rest)
    return {"id": rest, "object": "response", "deleted": True}
