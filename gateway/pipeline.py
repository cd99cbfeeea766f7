"""One request through the gateway: authenticate, route, attempt, relay, emit usage.

Everything here reads the in-memory route table only (no SQL) and is async end to end.
The API layer (``gateway.api``) parses and renders; this module decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from gateway.api.errors import GatewayError
from gateway.attempts import (
    OnOk,
    RequestContext,
    _attempt,
    _Failure,
    _redact,
    finish,
    finish_later,
)
from gateway.routing.plan import (
    estimate_completion_tokens,
    estimate_prompt_tokens,
    explain,
    route_plan,
)
from gateway.routing.table import Candidate, RouteTable, VirtualKeySnapshot
from gateway.usage.events import UsageEvent, get_usage_queue
from providers.adapters import Usage
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest
from providers.snapshot import KeySnapshot

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ProxyResult:
    """What the API layer sends: a whole body or a stream of SSE bytes."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def authenticate(table: RouteTable, presented: str | None) -> VirtualKeySnapshot:
    """Map a presented virtual key to its snapshot, or raise 401."""
    from gateway.models import hash_key  # local: keeps module import light for the ASGI app

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


def _gateway_headers(
    ctx: RequestContext, candidate: Candidate, key: KeySnapshot | None
) -> dict[str, str]:
    return {
        "x-request-id": ctx.request_id,
        "x-gateway-provider-id": str(candidate.provider.id),
        "x-gateway-provider-name": candidate.provider.name,
        "x-gateway-key-name": key.name if key else "",
        "x-gateway-attempts": str(len(ctx.attempts)),
        "x-gateway-attempt-trail": ", ".join(a.header() for a in ctx.attempts),
        "x-gateway-overhead-ms": f"{ctx.overhead_ms():.2f}",
    }


def _emit(
    ctx: RequestContext,
    *,
    alias: str,
    status: int,
    stream: bool,
    candidate: Candidate | None = None,
    key: KeySnapshot | None = None,
    usage: Usage | None = None,
    error_type: str = "",
    ttft_ms: float | None = None,
) -> None:
    usage = usage or Usage()
    event = UsageEvent(
        request_id=ctx.request_id,
        created_at=ctx.wall0,
        endpoint=ctx.endpoint,
        virtual_key_id=ctx.vkey.id,
        model_alias=alias,
        status_code=status,
        stream=stream,
        provider_id=candidate.provider.id if candidate else None,
        provider_name=candidate.provider.name if candidate else "",
        provider_type=candidate.provider.provider_type if candidate else "",
        key_id=key.id if key else None,
        key_name=key.name if key else "",
        account_group=key.account_group if key else None,
        mapping_id=candidate.mapping_id if candidate else None,
        provider_model=candidate.provider_model if candidate else "",
        error_type=error_type,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        latency_ms=(time.perf_counter() - ctx.t0) * 1000,
        ttft_ms=ttft_ms,
        attempts=list(ctx.attempts),
    )
    try:
        get_usage_queue().put(event)
    except Exception:
        # The queue implementation spools on failure; this is the last line of defence and
        # must never turn a served request into an error.
        logger.exception("usage event %s could not be queued", ctx.request_id)


def emit_failure(ctx: RequestContext, *, alias: str, error: GatewayError, stream: bool) -> None:
    """Record a request that ended in an error (after authentication).

    The instance and key are the last attempt's (None when nothing was attempted); the
    error's response carries the same attempt headers as a success."""
    error.headers = {
        **error.headers,
        "x-request-id": ctx.request_id,
        "x-gateway-attempts": str(len(ctx.attempts)),
        "x-gateway-attempt-trail": ", ".join(a.header() for a in ctx.attempts),
    }
    _emit(
        ctx,
        alias=alias,
        status=error.status,
        stream=stream,
        candidate=ctx.last_candidate if ctx.attempts else None,
        key=ctx.last_key if ctx.attempts else None,
        error_type=error.code or error.type,
    )


def _awaitable(fn: Callable[[Adapter, Candidate, httpx.Response], Any]) -> OnOk:
    async def call(adapter: Adapter, candidate: Candidate, response: httpx.Response) -> Any:
        return fn(adapter, candidate, response)

    return call


def _parse_or_fail(
    parse: Callable[[bytes], tuple[bytes, Usage]], candidate: Candidate, response: httpx.Response
) -> tuple[bytes, Usage]:
    """Translate a 2xx body; an unreadable one fails the attempt (the next instance may do)."""
    try:
        return parse(response.content)
    except Exception as exc:  # garbage from upstream: not the client's fault
        raise _Failure(
            502,
            "unreadable response",
            "retryable",
            GatewayError(
                502,
                "The provider returned an unreadable response.",
                code="bad_upstream_response",
                provider_id=candidate.provider.id,
            ),
        ) from exc


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
            headers = _gateway_headers(ctx, candidate, key)
            headers["content-type"] = "application/json"
            _emit(
                ctx,
                alias=alias,
                status=200,
                stream=False,
                candidate=candidate,
                key=key,
                usage=usage,
            )
            return ProxyResult(200, headers, body=payload)

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


async def _prefetch(
    adapter: Adapter, candidate: Candidate, response: httpx.Response, include_usage: bool
) -> tuple[StreamTranslator, AsyncIterator[Any], list[bytes], float | None]:
    """Read the stream until the first content: a failure before it allows failover."""
    translator = adapter.chat_stream(include_usage=include_usage)
    events = EventSource(response).aiter_sse()
    prefix: list[bytes] = []
    ttft: float | None = None
    try:
        async for event in events:
            prefix.extend(
                translator.feed(event.data, event.event if event.event != "message" else "")
            )
            if translator.error is not None and not translator.started:
                break
            if translator.started or translator.done:
                ttft = time.perf_counter()
                break
    except SSEError as exc:
        await response.aclose()
        raise _Failure(
            502,
            "provider did not stream",
            "retryable",
            GatewayError(
                502,
                "The provider did not answer with an event stream.",
                code="bad_upstream_response",
                provider_id=candidate.provider.id,
            ),
        ) from exc
    if translator.error is not None and not translator.started:
        await response.aclose()
        message = _redact(str(translator.error.get("message") or "stream error"), candidate)
        raise _Failure(
            502,
            message,
            "retryable",
            GatewayError(
                502,
                f"Provider error before the first token: {message}",
                type=str(translator.error.get("type") or "upstream_error"),
                code="upstream_stream_error",
                provider_id=candidate.provider.id,
            ),
        )
    return translator, events, prefix, ttft


async def _relay(
    ctx: RequestContext,
    alias: str,
    candidate: Candidate,
    key: KeySnapshot | None,
    response: httpx.Response,
    translator: StreamTranslator,
    events: AsyncIterator[Any],
    prefix: list[bytes],
    ttft: float | None,
) -> AsyncIterator[bytes]:
    """Relay the rest of the stream chunk by chunk; always close upstream and emit usage."""
    status = 200
    error_type = ""
    try:
        for chunk in prefix:
            yield chunk
        if not translator.done and translator.error is None:
            async for event in events:
                for chunk in translator.feed(
                    event.data, event.event if event.event != "message" else ""
                ):
                    yield chunk
                if translator.error is not None:
                    break
                if translator.done:
                    break
        if translator.error is not None:
            # Content already reached the client: no failover, a clean error event instead.
            status, error_type = 502, "upstream_stream_error"
            err = GatewayError(
                502,
                _redact(str(translator.error.get("message") or "stream error"), candidate),
                type=str(translator.error.get("type") or "upstream_error"),
                provider_id=candidate.provider.id,
            )
            yield b"data: " + err.openai_body() + b"\n\n"
        for chunk in translator.finish():
            yield chunk
    except (httpx.TimeoutException, httpx.TransportError):
        status, error_type = 502, "upstream_stream_broken"
        err = GatewayError(
            502,
            "The provider stream broke off.",
            type="upstream_error",
            provider_id=candidate.provider.id,
        )
        yield b"data: " + err.openai_body() + b"\n\n"
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        status, error_type = 499, "client_disconnected"
        raise
    finally:
        await response.aclose()
        finish_later(ctx, translator.usage)
        ttft_ms = (ttft - ctx.t0) * 1000 if ttft is not None else None
        _emit(
            ctx,
            alias=alias,
            status=status,
            stream=True,
            candidate=candidate,
            key=key,
            usage=translator.usage,
            error_type=error_type,
            ttft_ms=ttft_ms,
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
    headers = _gateway_headers(ctx, candidate, key)
    headers["content-type"] = "application/json"
    _emit(ctx, alias=alias, status=200, stream=False, candidate=candidate, key=key, usage=usage)
    return ProxyResult(200, headers, body=payload)


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
