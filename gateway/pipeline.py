"""One request through the gateway: authenticate, route, attempt, relay, emit usage.

Everything here reads the in-memory route table only (no SQL) and is async end to end.
The API layer (``gateway.api``) parses and renders; this module decides.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from gateway.api.errors import GatewayError
from gateway.attempts import RequestContext, _attempt, finish
from gateway.keys.models import hash_key
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
from gateway.routing.plan import (
    estimate_completion_tokens,
    estimate_prompt_tokens,
    explain,
    route_plan,
)
from gateway.routing.table import Candidate, RouteTable, VirtualKeySnapshot
from providers.adapters.base import Adapter, UpstreamRequest
from providers.snapshot import KeySnapshot

logger = logging.getLogger(__name__)


def authenticate(table: RouteTable, presented: str | None) -> VirtualKeySnapshot:
    """Map a presented virtual key to its snapshot, or raise 401."""
    if not presented:
        raise GatewayError(
            401,
            "Missing API key: send 'Authorization: Bearer <virtual key>' or 'x-api-key'.",
            code="missing_api_key",
        )
    vkey = table.virtual_keys.get(hash_key(presented))
    if vkey is None:
        raise GatewayError(401, "Invalid API key.", code="invalid_api_key")
    if not vkey.is_enabled:
        raise GatewayError(401, "This API key is disabled.", code="api_key_disabled")
    if vkey.expired():
        raise GatewayError(401, "This API key has expired.", code="api_key_expired")
    return vkey


def resolve(
    table: RouteTable, vkey: VirtualKeySnapshot, alias: str, *, need: str, stream: bool = False
) -> list[Candidate]:
    """Candidates for ``alias`` usable for ``need`` ("chat" | "embeddings"), in try order."""
    if not vkey.allows(alias):
        raise GatewayError(
            403,
            f"This API key is not allowed to use model '{alias}'.",
            code="model_not_allowed",
            param="model",
        )
    candidates = table.candidates(alias)
    if not candidates:
        raise GatewayError(
            404, f"The model '{alias}' does not exist.", code="model_not_found", param="model"
        )
    usable = [
        c
        for c in candidates
        if (c.supports_embeddings if need == "embeddings" else c.supports_chat)
    ]
    if stream:
        usable = [c for c in usable if c.supports_streaming]
    if not usable:
        what = "streaming chat" if stream and need == "chat" else need
        raise GatewayError(
            400,
            f"The model '{alias}' does not support {what}.",
            code="unsupported_capability",
            param="model",
        )
    return usable


async def plan(
    table: RouteTable, ctx: RequestContext, alias: str, candidates: list[Candidate], body: dict
) -> list[Candidate]:
    """Order the candidates by the alias's strategy, skip the unusable, count the key's
    limits (429 when over); remembers the plan on ``ctx`` for the attempt loop."""
    ctx.policy = table.policy
    ctx.plan = await route_plan(
        table,
        ctx.vkey,
        alias,
        candidates,
        prompt_tokens=estimate_prompt_tokens(body),
        completion_tokens=estimate_completion_tokens(body),
    )
    return ctx.plan.to_try()


# --- chat completions ---------------------------------------------------------------------


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return bool(isinstance(options, dict) and options.get("include_usage"))


async def chat_completions(
    table: RouteTable, ctx: RequestContext, body: dict[str, Any]
) -> ProxyResult:
    """Serve an OpenAI chat completion (streaming or not) for an authenticated caller."""
    alias = body["model"]
    stream = bool(body.get("stream"))
    try:
        candidates = await plan(
            table, ctx, alias, resolve(table, ctx.vkey, alias, need="chat", stream=stream), body
        )

        def build(
            adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
        ) -> UpstreamRequest:
            return adapter.chat_request(
                provider=candidate.provider,
                key=key,
                model=candidate.provider_model,
                body=body,
                stream=stream,
            )

        if not stream:

            def parse(adapter: Adapter, candidate: Candidate, response: httpx.Response) -> Any:
                return _parse_or_fail(adapter.chat_response, candidate, response)

            candidate, key, _response, (payload, usage) = await _attempt(
                ctx, candidates, build, stream=False, open_stream=_awaitable(parse)
            )
            await finish(ctx, usage)
            return json_result(
                ctx, alias=alias, candidate=candidate, key=key, payload=payload, usage=usage
            )

        include_usage = _wants_usage(body)

        async def open_stream(
            adapter: Adapter, candidate: Candidate, response: httpx.Response
        ) -> Any:
            return await _prefetch(adapter, candidate, response, include_usage)

        candidate, key, response, opened = await _attempt(
            ctx, candidates, build, stream=True, open_stream=open_stream
        )
    except GatewayError as error:
        emit_failure(ctx, alias=alias, error=error, stream=stream)
        raise
    translator, events, prefix, ttft = opened
    headers = _gateway_headers(ctx, candidate, key)
    headers.update(
        {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
        }
    )
    return ProxyResult(
        200,
        headers,
        stream=_relay(ctx, alias, candidate, key, response, translator, events, prefix, ttft),
    )


# --- embeddings ---------------------------------------------------------------------------


async def embeddings(table: RouteTable, ctx: RequestContext, body: dict[str, Any]) -> ProxyResult:
    """Serve an OpenAI embeddings request."""
    alias = body["model"]
    try:
        candidates = await plan(
            table, ctx, alias, resolve(table, ctx.vkey, alias, need="embeddings"), body
        )

        def build(
            adapter: Adapter, candidate: Candidate, key: KeySnapshot | None
        ) -> UpstreamRequest:
            return adapter.embeddings_request(
                provider=candidate.provider, key=key, model=candidate.provider_model, body=body
            )

        def parse(adapter: Adapter, candidate: Candidate, response: httpx.Response) -> Any:
            return _parse_or_fail(adapter.embeddings_response, candidate, response)

        candidate, key, _response, (payload, usage) = await _attempt(
            ctx, candidates, build, stream=False, open_stream=_awaitable(parse)
        )
        await finish(ctx, usage)
    except GatewayError as error:
        emit_failure(ctx, alias=alias, error=error, stream=False)
        raise
    return json_result(ctx, alias=alias, candidate=candidate, key=key, payload=payload, usage=usage)


# --- models -------------------------------------------------------------------------------


def _model_entry(alias: str, created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "llm-gateway"}


def list_models(table: RouteTable, vkey: VirtualKeySnapshot) -> dict[str, Any]:
    """The aliases this key may use, in OpenAI's list format."""
    created = int(table.built_at)
    data = [_model_entry(a, created) for a in sorted(table.aliases) if vkey.allows(a)]
    return {"object": "list", "data": data}


def get_model(table: RouteTable, vkey: VirtualKeySnapshot, alias: str) -> dict[str, Any]:
    if alias not in table.aliases or not vkey.allows(alias):
        # Same answer for "unknown" and "not yours": don't reveal other apps' aliases.
        raise GatewayError(
            404, f"The model '{alias}' does not exist.", code="model_not_found", param="model"
        )
    return _model_entry(alias, int(table.built_at))


# --- route explain ------------------------------------------------------------------------


async def route_explain(
    table: RouteTable, vkey: VirtualKeySnapshot, alias: str, *, need: str = "chat"
) -> dict[str, Any]:
    """``GET /v1/route?model=ALIAS``: the order a request would try right now, and why.

    Reads shared state without counting anything (no limit consumed, no round-robin turn)."""
    if not alias:
        raise GatewayError(
            400, "Missing required query parameter: 'model'.", code="missing_required_parameter"
        )
    candidates = resolve(table, vkey, alias, need=need)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": ""}]}
    route = await route_plan(
        table,
        vkey,
        alias,
        candidates,
        prompt_tokens=estimate_prompt_tokens(body),
        completion_tokens=estimate_completion_tokens(body),
        consume=False,
    )
    return explain(table, route, alias)
