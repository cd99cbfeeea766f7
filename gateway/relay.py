"""Relay and usage helpers shared by the endpoints of :mod:`gateway.pipeline` and
:mod:`gateway.messages`: response headers, usage events, the stream prefetch (content before
the first byte goes out, so failover stays possible) and the chunk-by-chunk relay.

Split from ``pipeline.py`` to keep each module small; the relay takes the error rendering of
the caller's wire format (OpenAI ``data:`` lines or Anthropic ``event: error``).
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
from gateway.attempts import OnOk, RequestContext, _Failure, _redact, finish_later, run_later
from gateway.routing.table import Candidate
from gateway.usage.events import UsageEvent, get_usage_queue
from providers import http
from providers.adapters import Usage
from providers.adapters.base import Adapter, StreamTranslator
from providers.snapshot import KeySnapshot

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ProxyResult:
    """What the API layer sends: a whole body or a stream of SSE bytes."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


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


def json_result(
    ctx: RequestContext,
    *,
    alias: str,
    candidate: Candidate,
    key: KeySnapshot | None,
    payload: bytes,
    usage: Usage,
) -> ProxyResult:
    """A whole (non-streamed) JSON answer: gateway headers, one usage event."""
    headers = _gateway_headers(ctx, candidate, key)
    headers["content-type"] = "application/json"
    _emit(ctx, alias=alias, status=200, stream=False, candidate=candidate, key=key, usage=usage)
    return ProxyResult(200, headers, body=payload)


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


async def _prefetch(
    adapter: Adapter,
    candidate: Candidate,
    response: httpx.Response,
    include_usage: bool,
    translator: StreamTranslator | None = None,
) -> tuple[StreamTranslator, AsyncIterator[Any], list[bytes], float | None]:
    """Read the stream until the first content: a failure before it allows failover.

    ``translator`` defaults to the adapter's chat translator (upstream -> OpenAI chunks)."""
    if translator is None:
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
    render_error: Callable[[GatewayError], bytes] | None = None,
    broken_tail: bytes = b"data: [DONE]\n\n",
) -> AsyncIterator[bytes]:
    """Relay the rest of the stream chunk by chunk; always close upstream and emit usage.

    ``render_error`` turns a mid-stream error into the client's format (default: an OpenAI
    ``data:`` line); ``broken_tail`` ends a stream the upstream broke off."""
    render = render_error or openai_error_line
    status = 200
    error_type = ""
    ended = False  # the upstream's last event arrived: the body's end is still to be read
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
        ended = translator.done and translator.error is None
        if translator.error is not None:
            # Content already reached the client: no failover, a clean error event instead.
            status, error_type = 502, "upstream_stream_error"
            err = GatewayError(
                502,
                _redact(str(translator.error.get("message") or "stream error"), candidate),
                type=str(translator.error.get("type") or "upstream_error"),
                provider_id=candidate.provider.id,
            )
            yield render(err)
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
        yield render(err)
        if broken_tail:
            yield broken_tail
    except (asyncio.CancelledError, GeneratorExit):
        status, error_type = 499, "client_disconnected"
        raise
    finally:
        if ended:
            run_later(http.close_after_tail(response, events))  # keeps the connection
        else:
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


def openai_error_line(error: GatewayError) -> bytes:
    return b"data: " + error.openai_body() + b"\n\n"
