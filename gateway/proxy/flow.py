"""The one flow every proxied endpoint runs: resolve -> plan -> attempt loop -> answer ->
settle (release the instance, emit the usage event).

Read top-down, :func:`serve` is the whole request after authentication. Everything here reads
the in-memory route table only (no SQL) and is async end to end. Errors are domain errors
(:mod:`gateway.core.errors`); the ASGI front renders them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any

from gateway.core.errors import (
    AuthenticationFailed,
    GatewayError,
    Unsupported,
)
from gateway.keys.models import hash_key
from gateway.proxy import render, tracing
from gateway.proxy.attempts import AttemptLoop, Served
from gateway.proxy.context import ProxyResult, RequestContext, run_later
from gateway.proxy.endpoints.base import Call, EndpointSpec
from gateway.proxy.relay import prefetch, read_whole, relay
from gateway.routing import state
from gateway.routing.plan import estimate_completion_tokens, estimate_prompt_tokens, route_plan
from gateway.routing.table import Candidate, RouteTable, VirtualKeySnapshot
from gateway.usage.events import UsageEvent, get_usage_queue
from providers.adapters import StreamTranslator, Usage
from providers.snapshot import KeySnapshot

logger = logging.getLogger(__name__)

_STREAM_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def authenticate(table: RouteTable, presented: str | None) -> VirtualKeySnapshot:
    """The snapshot of a presented virtual key, or :class:`AuthenticationFailed`."""
    if not presented:
        raise AuthenticationFailed(
            "Missing API key: send 'Authorization: Bearer <virtual key>' or 'x-api-key'.",
            code="missing_api_key",
        )
    vkey = table.virtual_keys.get(hash_key(presented))
    if vkey is None:
        raise AuthenticationFailed("Invalid API key.", code="invalid_api_key")
    if not vkey.is_enabled:
        raise AuthenticationFailed("This API key is disabled.", code="api_key_disabled")
    if vkey.expired():
        raise AuthenticationFailed("This API key has expired.", code="api_key_expired")
    return vkey


def resolve(
    table: RouteTable,
    vkey: VirtualKeySnapshot,
    alias: str,
    *,
    need: str,
    stream: bool = False,
    requested: str = "",
    fmt: str = render.OPENAI,
) -> list[Candidate]:
    """Candidates for ``alias`` usable for ``need`` ("chat" | "embeddings"), in table order.

    An alias the key may not use answers exactly like an unknown one (404 naming only what
    the client asked for, ``requested``), so no key learns which aliases other tenants have.
    Only a capability a mapping declares False keeps it out; an undeclared one (None) is not
    checked, the upstream decides.
    """
    candidates = table.candidates(alias)
    if not candidates or not vkey.allows(alias):
        raise render.model_not_found(requested or alias, fmt)
    usable = [
        c
        for c in candidates
        if (c.supports_embeddings if need == "embeddings" else c.supports_chat) is not False
    ]
    if stream:
        usable = [c for c in usable if c.supports_streaming is not False]
    if not usable:
        what = "streaming chat" if stream and need == "chat" else need
        raise Unsupported(
            f"The model '{alias}' does not support {what}.",
            code="unsupported_capability",
            param="model",
        )
    return usable


async def plan(
    table: RouteTable, ctx: RequestContext, call: Call, candidates: list[Candidate]
) -> list[Candidate]:
    """Order the candidates by the alias's strategy, skip the unusable, count the key's
    limits (:class:`RateLimited` when over); the plan is kept on ``ctx``."""
    ctx.policy = table.policy
    ctx.plan = await route_plan(
        table,
        ctx.vkey,
        call.alias,
        candidates,
        prompt_tokens=estimate_prompt_tokens(call.estimate),
        completion_tokens=estimate_completion_tokens(call.estimate),
    )
    return ctx.plan.to_try()


async def serve(
    spec: EndpointSpec, table: RouteTable, ctx: RequestContext, body: dict[str, Any]
) -> ProxyResult:
    """One proxied request for an authenticated caller, whole or streamed."""
    # The usage event names only aliases the table knows (see UNKNOWN_MODEL).
    ctx.alias = table.known_alias(str(body.get("model") or ""))
    try:
        call = spec.prepare(table, body)
        call.client_headers = ctx.client_headers
        ctx.alias, ctx.stream = table.known_alias(call.alias), call.stream
        if ctx.span is not None:
            tracing.request_model(ctx, call)
        if spec.load is not None:
            await spec.load(call, ctx)
        candidates = resolve(
            table,
            ctx.vkey,
            call.alias,
            need=spec.need,
            stream=call.stream,
            requested=call.requested,
            fmt=spec.error_format,
        )
        ordered = await plan(table, ctx, call, candidates)
        served = await AttemptLoop(ctx, spec, call, prefetch if call.stream else read_whole).run(
            ordered
        )
    except GatewayError as error:
        await settle(ctx, status=render.status_of(error), error_type=error.code or error.type or "")
        raise
    headers = answer_headers(ctx, served.candidate, served.key)
    if spec.answer_headers is not None:
        headers.update(spec.answer_headers(call, served.candidate))
    if not call.stream:
        payload, usage = served.result
        headers["content-type"] = "application/json"
        if ctx.span is not None:
            tracing.request_answered(ctx, payload)
        if spec.after_answer is not None:
            await spec.after_answer(call, ctx, payload)
        await settle(ctx, status=200, served=served, usage=usage)
        return ProxyResult(200, headers, body=payload)

    def on_end(status: int, error_type: str, usage: Usage, ttft: float | None) -> None:
        # The event goes out now; the release (which may await Redis) after the stream.
        release_later = settle(
            ctx, status=status, served=served, usage=usage, error_type=error_type, ttft=ttft
        )
        run_later(release_later)

    headers.update(_STREAM_HEADERS)
    after = spec.after_stream

    async def before_end(translator: StreamTranslator) -> None:
        if after is not None:
            await after(call, ctx, translator)

    stream = relay(spec, served, on_end, run_later, before_end if after else None)
    if ctx.span is not None and tracing.CAPTURE_CONTENT:
        stream = tracing.captured(ctx, stream)
    return ProxyResult(200, headers, stream=stream)


def answer_headers(
    ctx: RequestContext, candidate: Candidate, key: KeySnapshot | None
) -> dict[str, str]:
    """The gateway's headers on a served answer: which instance and how many attempts.

    Never which provider key: key names (and which of them fail) are for ops, in the usage
    record and the logs, not for tenants."""
    return {
        "x-request-id": ctx.request_id,
        "x-gateway-provider-id": str(candidate.provider.id),
        "x-gateway-provider-name": candidate.provider.name,
        "x-gateway-attempts": str(len(ctx.attempts)),
        "x-gateway-attempt-trail": ctx.attempt_trail(),
        "x-gateway-overhead-ms": f"{ctx.overhead_ms():.2f}",
    }


def settle(
    ctx: RequestContext,
    *,
    status: int,
    served: Served | None = None,
    usage: Usage | None = None,
    error_type: str = "",
    ttft: float | None = None,
) -> Coroutine[Any, Any, None]:
    """The request is over: emit its one usage event now, and return the release of its
    instance to await (or to run later, from a stream that cannot await).

    The only place a request's serving instance is released and its usage is emitted: a
    success, an error after authentication and a stream's end all come here.
    """
    usage = usage or Usage()
    # On an error the instance and key are the last attempt's (none when nothing was tried).
    candidate = served.candidate if served else (ctx.last_candidate if ctx.attempts else None)
    key = served.key if served else (ctx.last_key if ctx.attempts else None)
    event = UsageEvent(
        request_id=ctx.request_id,
        created_at=ctx.wall0,
        endpoint=ctx.endpoint,
        virtual_key_id=ctx.vkey.id,
        model_alias=ctx.alias,
        status_code=status,
        stream=ctx.stream,
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
        ttft_ms=(ttft - ctx.t0) * 1000 if ttft is not None else None,
        attempts=list(ctx.attempts),
    )
    if ctx.span is not None:
        tracing.request_settled(
            ctx,
            status=status,
            candidate=candidate,
            key=key,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            error_type=error_type,
            response_model=usage.model,
        )
    try:
        get_usage_queue().put(event)
    except Exception:
        # The queue implementation spools on failure; this is the last line of defence and
        # must never turn a served request into an error.
        logger.exception("usage event %s could not be queued", ctx.request_id)
    return release(ctx, usage if served else None)


async def release(ctx: RequestContext, usage: Usage | None) -> None:
    """Release the serving instance (success, latency, real tokens) and correct the key's
    token window with the real usage."""
    lease, ctx.lease = ctx.lease, None
    actual = usage.prompt_tokens + usage.completion_tokens if usage is not None else None
    if lease is not None:
        await lease.release(
            ok=True,
            latency_ms=ctx.ttfb_ms,
            failure_threshold=ctx.policy.failure_threshold,
            recovery_timeout=float(ctx.policy.recovery_timeout),
            actual_tokens=actual,
        )
    if actual is not None and ctx.vkey.tokens_per_minute is not None and ctx.plan is not None:
        await state.key_tokens_correct(ctx.vkey.id, actual - ctx.plan.prompt_tokens)
