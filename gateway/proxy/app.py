"""The lean ASGI front for the hot ``/v1`` endpoints; everything else goes to Django.

Why not a DRF view: Django's per-request thread hop and DRF's per-request machinery each cost
more than the gateway's whole overhead budget (README, "Performance"). This layer does only
what the endpoints need: find the endpoint in a static route table, authenticate from
memory, read and check the body, run the one flow, send; and render every domain error in
the caller's format in one place (:meth:`GatewayApp.v1`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from gateway.core.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
)
from gateway.proxy import flow, render, tracing
from gateway.proxy.context import ProxyResult, RequestContext, background_settled
from gateway.proxy.endpoints.anthropic import COUNT_TOKENS, MESSAGES
from gateway.proxy.endpoints.base import EndpointSpec, ReadSpec
from gateway.proxy.endpoints.openai import CHAT, EMBEDDINGS
from gateway.proxy.endpoints.reads import get_model, list_models, route_explain
from gateway.proxy.endpoints.responses import (
    RESPONSES,
    RESPONSES_INPUT_TOKENS,
    delete_response,
    get_response,
)
from gateway.proxy.probes import PROBE_PATHS, probe_answer
from gateway.proxy.validation import check_depth, may_nest_deeper
from gateway.routing.holder import route_tables
from gateway.usage import lifespan as usage_lifespan
from gateway.usage.budget_state import budget_state
from providers import db_thread, http

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: (method, path) -> endpoint. Static: a request finds its endpoint with one dict lookup.
ROUTES: dict[tuple[str, str], EndpointSpec | ReadSpec] = {
    ("POST", "/v1/chat/completions"): CHAT,
    ("POST", "/v1/embeddings"): EMBEDDINGS,
    ("POST", "/v1/messages"): MESSAGES,
    ("POST", "/v1/messages/count_tokens"): COUNT_TOKENS,
    ("POST", "/v1/responses"): RESPONSES,
    ("POST", "/v1/responses/input_tokens"): RESPONSES_INPUT_TOKENS,
    ("GET", "/v1/models"): ReadSpec("models", list_models),
    ("GET", "/v1/models/"): ReadSpec("models", list_models),
    ("GET", "/v1/route"): ReadSpec("route", route_explain),
}
#: Path prefixes whose rest is a parameter: ``/v1/models/{alias}``, ``/v1/responses/{id}``.
PREFIX_ROUTES: dict[tuple[str, str], ReadSpec] = {
    ("GET", "/v1/models/"): ReadSpec("model", get_model),
    ("GET", "/v1/responses/"): ReadSpec("response", get_response),
    ("DELETE", "/v1/responses/"): ReadSpec("response_delete", delete_response),
}
_METHODS: dict[str, str] = {path: method for method, path in ROUTES} | {
    path: method for method, path in PREFIX_ROUTES
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _headers(scope: Scope) -> dict[str, str]:
    # ASGI gives lowercase names; latin-1 is HTTP's byte-preserving decoding.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def presented_key(headers: dict[str, str]) -> str | None:
    """The virtual key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


async def read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    """The request body, refusing anything over ``GATEWAY_MAX_BODY_BYTES``."""
    limit = settings.GATEWAY_MAX_BODY_BYTES
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body"):
            # Most bodies come in one message: no join (a copy) of a one-element list.
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request body is larger than the limit of {limit} bytes.")


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("The request body is empty; expected JSON.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    # Each level of nesting opens with a bracket: a body with no more brackets than the limit
    # cannot nest deeper, and skips the walk.
    if may_nest_deeper(raw):
        check_depth(body)
    return body


async def send_json(
    send: Send, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in headers.items()
            if k not in ("content-type", "content-length")
        ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_result(result: ProxyResult, receive: Receive, send: Send) -> None:
    """Send a flow's result; streams are relayed chunk by chunk as they arrive.

    A watcher task listens for the client going away and cancels the relay, which closes the
    upstream stream (the generator's ``finally``) instead of reading it to the end for nobody.
    """
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
    if result.stream is None:
        # Sized: the client reads exactly the body, and the server sends it as is (not chunked).
        raw_headers.append((b"content-length", str(len(result.body)).encode()))
        await send({"type": "http.response.start", "status": result.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": result.body})
        return
    await send({"type": "http.response.start", "status": result.status, "headers": raw_headers})
    relay = asyncio.current_task()
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                if relay is not None:
                    relay.cancel()
                return

    watcher = asyncio.get_running_loop().create_task(watch())
    stream = result.stream
    try:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not disconnected:
            raise
        if relay is not None:
            relay.uncancel()
    except OSError:
        # The server reports a vanished client as an OSError on send.
        pass
    finally:
        watcher.cancel()
        await stream.aclose()  # type: ignore[attr-defined]


def freeze_startup_heap() -> None:
    """Move everything alive after startup (Django, the models, the first route table) out of
    the cyclic garbage collector's reach.

    Why: a full (generation 2) collection walks every tracked object; with Django loaded that
    took 50-60 ms per pause under load here (measured with ``gc.callbacks``), which was the
    whole p99 at c=16. Startup objects live as long as the process, so scanning them is wasted
    work; after ``gc.freeze()`` a full collection takes about 1 ms. The collect first keeps
    startup garbage out of the frozen set (CPython's documented pattern for ``gc.freeze``).
    """
    gc.collect()
    gc.freeze()


def _route(method: str, path: str) -> tuple[EndpointSpec | ReadSpec, str]:
    """The endpoint for ``method path`` and the path's parameter part (for prefix routes)."""
    spec = ROUTES.get((method, path))
    if spec is not None:
        return spec, ""
    for (m, prefix), read in PREFIX_ROUTES.items():
        if m == method and path.startswith(prefix):
            return read, path[len(prefix) :]
    allowed = _METHODS.get(path) or next(
        (m for (m, prefix) in PREFIX_ROUTES if path.startswith(prefix)), None
    )
    if allowed is not None:
        raise MethodNotAllowed(
            f"Method {method} is not allowed here; use {allowed}.", allowed=allowed
        )
    raise NotFound(f"Unknown endpoint: {method} {path}", code="unknown_url")


def _read_route(
    spec: EndpointSpec | ReadSpec, method: str, path: str, rest: str
) -> tuple[str, str] | None:
    """(method, route template) of a read endpoint, for its span (a model call: None); the
    template, not the path, so an id never becomes part of a span name."""
    if not isinstance(spec, ReadSpec):
        return None
    return method, (path[: len(path) - len(rest)] + "{id}") if rest else path


class GatewayApp:
    """ASGI application: ``/v1/*``, the probes and the scrape (``gateway.proxy.probes``)
    served here, everything else by Django."""

    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["path"].startswith("/v1/"):
            await self.v1(scope, receive, send)
        elif kind == "http" and scope["path"] in PROBE_PATHS and await probe_answer(scope, send):
            return
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tracing.tracing_configure_from_env()
                await route_tables.startup()
                await usage_lifespan.usage_startup()
                freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await route_tables.stop_refresher()
                await background_settled(timeout=5.0)  # releases still on their way
                await usage_lifespan.usage_shutdown()
                await http.close_client()
                # Flushing may wait for the collector (its timeout): not on the loop.
                await asyncio.get_running_loop().run_in_executor(None, tracing.tracing_shutdown)
                await db_thread.aclose_connections()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def v1(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``/v1`` request; every error is rendered here, in the caller's format
        (Anthropic's for ``/v1/messages*``, whose SDKs map it to their exception classes)."""
        path: str = scope["path"]
        fmt = render.ANTHROPIC if path.startswith("/v1/messages") else render.OPENAI
        ctx: RequestContext | None = None
        span = None  # the request's trace span, when tracing is on (gateway.proxy.tracing)
        status, error_type = 200, ""
        try:
            spec, rest = _route(scope["method"], path)
            headers = _headers(scope)
            if tracing.ON:
                span = tracing.request_start(
                    spec.name, headers, read=_read_route(spec, scope["method"], path, rest)
                )
            table = await route_tables.get()
            vkey = flow.authenticate(table, presented_key(headers))
            if isinstance(spec, ReadSpec):
                if span is not None:
                    tracing.read_authenticated(span, vkey.id)
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                answer = await spec.handle(table, vkey, query, rest)
                await send_json(send, 200, orjson.dumps(answer))
                return
            await budget_state.check(vkey)  # from memory (no SQL)
            # Authenticated before the body is read: an unauthenticated caller cannot make the
            # gateway buffer a large body.
            body = spec.validate(parse_json(await read_body(receive, headers)))
            ctx = RequestContext(vkey=vkey, endpoint=spec.name, client_headers=headers, span=span)
            result = await flow.serve(spec, table, ctx, body)
            await send_result(result, receive, send)
        except GatewayError as error:
            status, error_type = render.status_of(error), error.code or error.type or ""
            await send_json(
                send,
                status,
                render.error_body(error, fmt),
                render.error_headers(error, ctx),
            )
        except asyncio.CancelledError:
            status, error_type = 499, "client_disconnected"
            raise
        except Exception:
            logger.exception("unhandled error on %s", path)
            status, error_type = 500, "internal_error"
            internal = InternalError("The gateway failed to process the request.")
            await send_json(send, 500, render.error_body(internal, fmt))
        finally:
            if span is not None:
                tracing.request_end(span, ctx, status, error_type)
