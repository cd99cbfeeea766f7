"""The lean ASGI front for the hot ``/v1`` endpoints; everything else goes to Django.

Why not a DRF view: DESIGN.md measured Django's per-request thread hop and DRF's per-request
machinery at more than the gateway's whole 1 ms overhead budget each. This layer does only
what the endpoints need (parse, authenticate from memory, call the pipeline, send) and shares
the pipeline, auth and error code with everything else. See README "Performance".
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

from gateway import attempts, messages, pipeline
from gateway.api.errors import GatewayError
from gateway.api.validation import validate_chat, validate_embeddings
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


async def read_body(scope: Scope, receive: Receive, headers: dict[str, str]) -> bytes:
    """The request body, refusing (413) anything over ``GATEWAY_MAX_BODY_BYTES``."""
    limit = settings.GATEWAY_MAX_BODY_BYTES
    declared = headers.get("content-length")
    too_large = GatewayError(
        413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise GatewayError(400, "The request body is empty; expected JSON.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400, f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None


async def send_json(
    send: Send, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = list(_JSON_HEADERS)
    if headers:
        raw += [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in headers.items()
            if k != "content-type"
        ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_result(result: pipeline.ProxyResult, receive: Receive, send: Send) -> None:
    """Send a pipeline result; streams are relayed chunk by chunk as they arrive.

    A watcher task listens for the client going away and cancels the relay, which closes the
    upstream stream (the generator's ``finally``) instead of reading it to the end for nobody.
    """
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
    await send({"type": "http.response.start", "status": result.status, "headers": raw_headers})
    if result.stream is None:
        await send({"type": "http.response.body", "body": result.body})
        return
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


class GatewayApp:
    """ASGI application: ``/v1/*`` served here, everything else by Django."""

    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["path"].startswith("/v1/"):
            await self.v1(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await route_tables.refresh(force=True)
                except Exception:
                    # Serve anyway: the first request retries the build (e.g. DB not migrated yet).
                    logger.exception("could not build the route table at startup")
                await usage_lifespan.usage_startup()
                freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await attempts.background_settled(timeout=5.0)  # releases still on their way
                await usage_lifespan.usage_shutdown()
                await http.close_client()
                await db_thread.aclose_connections()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def v1(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        anthropic = path.startswith("/v1/messages")
        try:
            if path == "/v1/chat/completions":
                self._allow(method, "POST")
                await self.proxy(
                    scope, receive, send, "chat", validate_chat, pipeline.chat_completions
                )
            elif path == "/v1/messages":
                self._allow(method, "POST")
                await self.proxy(
                    scope, receive, send, "messages", messages.validate_messages, messages.messages
                )
            elif path == "/v1/messages/count_tokens":
                self._allow(method, "POST")
                await self.proxy(
                    scope,
                    receive,
                    send,
                    "count_tokens",
                    lambda body: messages.validate_messages(body, count_only=True),
                    messages.count_tokens,
                )
            elif path == "/v1/embeddings":
                self._allow(method, "POST")
                await self.proxy(
                    scope, receive, send, "embeddings", validate_embeddings, pipeline.embeddings
                )
            elif path == "/v1/models" or path == "/v1/models/":
                self._allow(method, "GET")
                table, vkey = await self._auth(scope)
                await send_json(send, 200, orjson.dumps(pipeline.list_models(table, vkey)))
            elif path == "/v1/route":
                self._allow(method, "GET")
                table, vkey = await self._auth(scope)
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                alias = (query.get("model") or [""])[0]
                need = (query.get("endpoint") or ["chat"])[0]
                need = "embeddings" if need == "embeddings" else "chat"
                explained = await pipeline.route_explain(table, vkey, alias, need=need)
                await send_json(send, 200, orjson.dumps(explained))
            elif path.startswith("/v1/models/"):
                self._allow(method, "GET")
                table, vkey = await self._auth(scope)
                alias = path[len("/v1/models/") :]
                await send_json(send, 200, orjson.dumps(pipeline.get_model(table, vkey, alias)))
            else:
                raise GatewayError(404, f"Unknown endpoint: {method} {path}", code="unknown_url")
        except GatewayError as error:
            # Anthropic-format endpoints answer every error (auth, validation, upstream) in
            # Anthropic's shape, which its SDKs map to their exception classes.
            body = error.anthropic_body() if anthropic else error.openai_body()
            await send_json(send, error.status, body, error.headers)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unhandled error on %s", path)
            internal = GatewayError(
                500, "The gateway failed to process the request.", code="internal_error"
            )
            await send_json(
                send, 500, internal.anthropic_body() if anthropic else internal.openai_body()
            )

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise GatewayError(
                405,
                f"Method {method} is not allowed here; use {allowed}.",
                code="method_not_allowed",
                headers={"allow": allowed},
            )

    async def _auth(self, scope: Scope) -> tuple[Any, Any]:
        table = await route_tables.get()
        return table, pipeline.authenticate(table, presented_key(_headers(scope)))

    async def proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: str,
        validate: Callable[[Any], dict[str, Any]],
        handler: Callable[..., Awaitable[pipeline.ProxyResult]],
    ) -> None:
        headers = _headers(scope)
        table = await route_tables.get()
        # Authenticate before reading the body: an unauthenticated caller cannot make the
        # gateway buffer 20 MB.
        vkey = pipeline.authenticate(table, presented_key(headers))
        await budget_state.check(vkey)  # 402 budget_exceeded, from memory (no SQL)
        body = validate(parse_json(await read_body(scope, receive, headers)))
        ctx = pipeline.RequestContext(vkey=vkey, endpoint=endpoint, client_headers=headers)
        result = await handler(table, ctx, body)
        await send_result(result, receive, send)
