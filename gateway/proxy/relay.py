"""Reading an upstream's 2xx answer: a whole body, or a stream relayed chunk by chunk.

A stream is read up to its first content before anything goes to the client
(:func:`prefetch`), so an upstream that fails before that still fails over; after it, the
rest is relayed as it arrives (:func:`relay`) and a failure becomes an error event in the
caller's format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError

from gateway.core.errors import BadUpstreamResponse, UpstreamError
from gateway.proxy import render
from gateway.proxy.attempts import AttemptFailed, Served, redact
from gateway.proxy.endpoints.base import Call, EndpointSpec
from gateway.routing.table import Candidate
from providers import http
from providers.adapters import Usage
from providers.adapters.base import Adapter, StreamTranslator

logger = logging.getLogger(__name__)


def unreadable(candidate: Candidate) -> AttemptFailed:
    return AttemptFailed(
        502,
        "retryable",
        BadUpstreamResponse(
            "The provider returned an unreadable response.", provider_id=candidate.provider.id
        ),
    )


async def read_whole(
    spec: EndpointSpec, call: Call, adapter: Adapter, candidate: Candidate, response: httpx.Response
) -> tuple[bytes, Usage]:
    """Translate a 2xx body; an unreadable one fails the attempt (the next instance may do)."""
    try:
        return spec.parse(call, adapter, response.content)
    except Exception as exc:  # garbage from upstream: not the client's fault
        raise unreadable(candidate) from exc


@dataclass(slots=True)
class Opened:
    """A stream read up to its first content: what to send first and how to go on."""

    translator: StreamTranslator
    events: AsyncIterator[Any]
    prefix: list[bytes]
    ttft: float | None  # perf_counter time of the first content


async def prefetch(
    spec: EndpointSpec, call: Call, adapter: Adapter, candidate: Candidate, response: httpx.Response
) -> Opened:
    """Read the stream until the first content: a failure before it allows failover."""
    assert spec.stream is not None
    translator = spec.stream(call, adapter)
    events = adapter.stream_events(response)
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
        raise AttemptFailed(
            502,
            "retryable",
            BadUpstreamResponse(
                "The provider did not answer with an event stream.",
                provider_id=candidate.provider.id,
            ),
        ) from exc
    if translator.error is not None and not translator.started:
        await response.aclose()
        message = redact(str(translator.error.get("message") or "stream error"), candidate)
        raise AttemptFailed(
            502,
            "retryable",
            BadUpstreamResponse(
                f"Provider error before the first token: {message}",
                type=str(translator.error.get("type") or "upstream_error"),
                code="upstream_stream_error",
                provider_id=candidate.provider.id,
            ),
        )
    return Opened(translator, events, prefix, ttft)


#: Called once when a relayed stream ends, however it ends: (status, error type, usage, ttft).
OnEnd = Callable[[int, str, Usage, float | None], None]
#: Awaited once the upstream ended cleanly, before the translator's closing bytes go out.
BeforeEnd = Callable[[StreamTranslator], Awaitable[None]]


async def relay(
    spec: EndpointSpec,
    served: Served,
    on_end: OnEnd,
    run_later: Callable[[Any], None],
    before_end: BeforeEnd | None = None,
) -> AsyncIterator[bytes]:
    """Relay the rest of the stream chunk by chunk; always close upstream and call
    ``on_end`` (which releases the instance and emits the usage event). ``before_end`` runs
    once the upstream ended cleanly, before the closing bytes (never before the first)."""
    opened: Opened = served.result
    translator, events, response = opened.translator, opened.events, served.response
    provider_id = served.candidate.provider.id
    status = 200
    error_type = ""
    ended = False  # the upstream's last event arrived: the body's end is still to be read
    try:
        for chunk in opened.prefix:
            yield chunk
        if not translator.done and translator.error is None:
            async for event in events:
                for chunk in translator.feed(
                    event.data, event.event if event.event != "message" else ""
                ):
                    yield chunk
                if translator.error is not None or translator.done:
                    break
        ended = translator.done and translator.error is None
        if translator.error is not None:
            # Content already reached the client: no failover, a clean error event instead.
            status, error_type = 502, "upstream_stream_error"
            message = str(translator.error.get("message") or "stream error")
            error = UpstreamError(
                502,
                redact(message, served.candidate),
                type=str(translator.error.get("type") or "upstream_error"),
                provider_id=provider_id,
            )
            # The stream's own failure events where it has them (the Responses API's
            # ``response.failed``), else an error event in the endpoint's error format.
            own = translator.fail_events(error.message, error.type or "upstream_error", None)
            yield b"".join(own) if own else render.stream_error(error, spec.error_format)
        elif before_end is not None:
            try:
                await before_end(translator)
            except Exception:
                logger.exception("work before the end of a stream failed")
        for chunk in translator.finish():
            yield chunk
    except (httpx.TimeoutException, httpx.TransportError):
        status, error_type = 502, "upstream_stream_broken"
        broken = UpstreamError(
            502, "The provider stream broke off.", type="upstream_error", provider_id=provider_id
        )
        own = translator.fail_events(broken.message, "upstream_error", None)
        if own:
            yield b"".join(own)
        else:
            yield render.stream_error(broken, spec.error_format)
            if spec.broken_tail:
                yield spec.broken_tail
    except (asyncio.CancelledError, GeneratorExit):
        status, error_type = 499, "client_disconnected"
        raise
    finally:
        if ended:
            run_later(http.close_after_tail(response, events))  # keeps the connection
        else:
            await response.aclose()
        on_end(status, error_type, translator.usage.named(translator.served_model), opened.ttft)
