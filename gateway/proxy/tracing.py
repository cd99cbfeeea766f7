"""Optional OpenTelemetry tracing of ``/v1`` requests: one SERVER span per request, one CLIENT
span per upstream attempt, W3C ``traceparent`` to the upstream (GenAI semantic conventions).

Off unless the environment asks for it (:func:`tracing_configure_from_env`). Off, nothing of
OpenTelemetry is imported and the request path pays one attribute test per hook
(``ctx.span is not None``); on, the SDK objects are held here after :func:`tracing_setup`.
Spans are exported by the SDK's batch processor on its own thread, so an unreachable collector
costs dropped spans and a warning a minute (``tracing_export.QuietExporter``), never a request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from django.core.exceptions import ImproperlyConfigured

from gateway.proxy.stream_content import StreamContent, json_object

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

    from gateway.proxy.context import RequestContext
    from gateway.proxy.endpoints.base import Call
    from gateway.routing.table import Candidate
    from gateway.usage.events import Attempt
    from providers.snapshot import KeySnapshot

logger = logging.getLogger(__name__)

#: True once :func:`tracing_setup` ran; the ASGI front starts a span only then.
ON = False
#: Prompt and completion text on spans (the semantic conventions' own switch).
CAPTURE_CONTENT = False
CONTENT_SETTING = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_provider: TracerProvider | None = None
_tracer: Any = None
_api: Any = None  # the ``opentelemetry.trace`` module, imported by setup
_propagate: Any = None  # ``opentelemetry.propagate``

#: Endpoint name -> ``gen_ai.operation.name`` (Messages and Responses are chat operations).
OPERATIONS = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "embeddings": "embeddings",
}
#: Provider type -> ``gen_ai.provider.name`` (well-known values of the conventions).
PROVIDER_NAMES = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
}
#: Attempt error kinds (``Attempt.error``) -> ``gateway.attempt.outcome``.
OUTCOMES = {
    "auth": "auth",
    "rate_limit": "rate_limited",
    "retryable": "retryable",
    "timeout": "transport",
    "connect_error": "transport",
}


# --- setup --------------------------------------------------------------------------------


def tracing_wanted(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for tracing (OpenTelemetry's variables: an OTLP endpoint,
    or ``OTEL_TRACES_EXPORTER=otlp``; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
    turn it off). Refuses what the gateway cannot export, naming the setting."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter not in ("", "otlp"):
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: use 'otlp' or 'none'."
        )
    wanted = exporter == "otlp" or bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    if wanted:
        for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = env.get(name, "").strip()
            if protocol and protocol != "http/protobuf":
                raise ImproperlyConfigured(
                    f"{name}={protocol!r} is not supported: the gateway exports "
                    "'http/protobuf' (the default)."
                )
            if protocol:
                break
    return wanted


def tracing_configure_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Set tracing up if the environment asks for it (at process startup); True if on."""
    env = os.environ if env is None else env
    if ON or not tracing_wanted(env):
        return ON
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from gateway.proxy.tracing_export import QuietExporter

    # The exporter reads its endpoint, headers and timeout from the OTEL_* variables itself.
    tracing_setup(QuietExporter(OTLPSpanExporter()), env=env)
    return True


def tracing_setup(
    exporter: SpanExporter, *, env: Mapping[str, str] | None = None, batch: bool = True
) -> TracerProvider:
    """Turn tracing on, exporting to ``exporter`` (tests pass an in-memory one).

    The provider is the gateway's own, not the global one: it can be replaced (tests) and does
    not capture spans of libraries that look for a global provider."""
    global ON, CAPTURE_CONTENT, _provider, _tracer, _api, _propagate
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    env = os.environ if env is None else env
    tracing_shutdown()
    service = env.get("OTEL_SERVICE_NAME") or "llm-gateway"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    )
    _provider, _api, _propagate = provider, trace, propagate
    _tracer = provider.get_tracer("llm-gateway")
    CAPTURE_CONTENT = env.get(CONTENT_SETTING, "").strip().lower() == "true"
    ON = True
    return provider


def tracing_shutdown() -> None:
    """Flush and stop the exporter, and turn tracing off (process shutdown, tests)."""
    global ON, _provider, _tracer
    provider, _provider = _provider, None
    ON, _tracer = False, None
    if provider is not None:
        provider.shutdown()


# --- the request path: called only when ``ctx.span`` (or ``ON``) says tracing is on --------


def request_start(
    endpoint: str, client_headers: Mapping[str, str], *, read: tuple[str, str] | None = None
) -> Span:
    """The SERVER span of one request; a client's ``traceparent`` becomes its parent.

    A model call is a GenAI operation (renamed ``{operation} {model}`` once the model is
    known); a ``read`` (method, route) answered from the route table (the model list, the
    route explanation, a stored response) is a plain HTTP span named ``{method} {route}``.
    """
    parent = _propagate.extract(client_headers) if "traceparent" in client_headers else None
    # Attributes go in one call per span and step: each ``set_attribute`` takes the span's lock.
    attributes: dict[str, Any] = {"gateway.endpoint": endpoint}
    if read is None:
        name = attributes["gen_ai.operation.name"] = OPERATIONS.get(endpoint, endpoint)
    else:
        attributes["http.request.method"], attributes["http.route"] = read
        name = " ".join(read)
    return _tracer.start_span(
        name, context=parent, kind=_api.SpanKind.SERVER, attributes=attributes
    )


def read_authenticated(span: Span, vkey_id: int) -> None:
    """A read's caller is known (the virtual key, never the key itself)."""
    span.set_attribute("gateway.virtual_key.id", vkey_id)


def request_model(ctx: RequestContext, call: Call) -> None:
    """The model is known: name the span ``{operation} {model}``, capture the input if on."""
    span = ctx.span
    model = call.requested or call.alias
    span.update_name(f"{OPERATIONS.get(ctx.endpoint, ctx.endpoint)} {model}")
    attributes: dict[str, Any] = {
        "gen_ai.request.model": model,
        "gateway.request_id": ctx.request_id,
        "gateway.virtual_key.id": ctx.vkey.id,
        "gateway.stream": call.stream,
    }
    if CAPTURE_CONTENT:
        body = call.body
        messages = body.get("messages", body.get("input"))
        if messages is not None:
            attributes["gen_ai.input.messages"] = _json(messages)
        if body.get("system") is not None:
            attributes["gen_ai.system_instructions"] = _json(body["system"])
    span.set_attributes(attributes)


def request_answered(ctx: RequestContext, payload: bytes) -> None:
    """A whole answer is ready: its content on the span, if capture is on."""
    if not CAPTURE_CONTENT:
        return
    answer = json_object(payload)
    if answer is None:
        return
    output = answer.get("choices", answer.get("content", answer.get("output")))
    if output is not None:
        ctx.span.set_attribute("gen_ai.output.messages", _json(output))


async def captured(ctx: RequestContext, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream`` passed on as it is; when it ends, however it ends, what it said goes on the
    SERVER span as ``gen_ai.output.messages`` (only used with content capture on)."""
    content = StreamContent(ctx.endpoint)
    try:
        async for chunk in stream:
            content.feed(chunk)
            yield chunk
    finally:
        # Closed early (the client left): the relay's own clean-up must run now, not at GC.
        await stream.aclose()  # type: ignore[attr-defined]
        output = content.output()
        if output and ctx.span is not None:
            ctx.span.set_attribute("gen_ai.output.messages", _json(output))


def request_end(span: Span, ctx: RequestContext | None, status: int, error_type: str = "") -> None:
    """End the SERVER span with the status the client got (a stream's: how it ended); an
    attempt cut short (the client went away) ends with it."""
    if ctx is not None:
        if ctx.span_status is not None:
            status, error_type = ctx.span_status
        for left in (ctx.attempt_span, ctx.serving_span):
            if left is not None:
                left.set_attribute("gateway.attempt.outcome", "cancelled")
                left.end()
        ctx.attempt_span = ctx.serving_span = None
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", error_type or str(status))
        if status >= 500:
            span.set_status(_api.StatusCode.ERROR)
    span.end()


def _instance(candidate: Candidate, key: KeySnapshot | None) -> dict[str, Any]:
    provider = candidate.provider
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider.provider_type, provider.provider_type),
        "gateway.provider_instance.id": provider.id,
        "gateway.provider_instance.name": provider.name,
    }
    if key is not None and key.account_group is not None:
        attributes["gateway.account_group"] = key.account_group
    return attributes


def attempt_start(
    ctx: RequestContext, candidate: Candidate, key: KeySnapshot | None
) -> dict[str, str]:
    """Open the CLIENT span of one upstream attempt; its ``traceparent`` (and ``tracestate``)
    for the upstream request."""
    operation = OPERATIONS.get(ctx.endpoint, ctx.endpoint)
    attributes = _instance(candidate, key)
    attributes["gen_ai.operation.name"] = operation
    attributes["gen_ai.request.model"] = candidate.provider_model
    span = _tracer.start_span(
        f"{operation} {candidate.provider_model}",
        context=_api.set_span_in_context(ctx.span),
        kind=_api.SpanKind.CLIENT,
        attributes=attributes,
    )
    ctx.attempt_span = span
    headers: dict[str, str] = {}
    _propagate.inject(headers, context=_api.set_span_in_context(span))
    return headers


def attempt_recorded(ctx: RequestContext, attempt: Attempt) -> None:
    """An attempt is over: end its span, unless it is serving (the span then ends with the
    request, with its usage: for a stream, when the stream ends)."""
    span, ctx.attempt_span = ctx.attempt_span, None
    if not attempt.error and attempt.status is not None and attempt.status < 300:
        ctx.serving_span = span
        return
    outcome = OUTCOMES.get(attempt.error, "fatal")
    attributes: dict[str, Any] = {
        "gateway.attempt.outcome": outcome,
        "error.type": attempt.error
        if outcome == "transport"
        else str(attempt.status or attempt.error),
    }
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    span.set_attributes(attributes)
    span.set_status(_api.StatusCode.ERROR)
    span.end()


def request_settled(
    ctx: RequestContext,
    *,
    status: int,
    candidate: Candidate | None,
    key: KeySnapshot | None,
    prompt_tokens: int,
    completion_tokens: int,
    error_type: str,
    response_model: str = "",
) -> None:
    """The request is over (whole answer, error, or a stream's end): what it used, on the
    SERVER span and the serving attempt's. ``gen_ai.response.model`` is ``response_model``,
    the model the upstream's reply named, else the model the gateway asked it for."""
    usage: dict[str, Any] = {
        "gen_ai.usage.input_tokens": prompt_tokens,
        "gen_ai.usage.output_tokens": completion_tokens,
    }
    if candidate is not None:  # the serving attempt's too
        usage["gen_ai.response.model"] = response_model or candidate.provider_model
    attributes: dict[str, Any] = {"gateway.attempts": len(ctx.attempts), **usage}
    if candidate is not None:
        attributes.update(_instance(candidate, key))
    ctx.span.set_attributes(attributes)
    serving, ctx.serving_span = ctx.serving_span, None
    if serving is not None:
        usage["gateway.attempt.outcome"] = "ok"
        usage["http.response.status_code"] = 200
        if error_type:  # a stream that broke after its first content
            usage["error.type"] = error_type
            serving.set_status(_api.StatusCode.ERROR)
        serving.set_attributes(usage)
        serving.end()
    ctx.span_status = (status, error_type)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
