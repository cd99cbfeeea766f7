"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking OpenAI, Azure and Anthropic.

It runs ``aiohttp.web`` in a background thread with its own event loop, on a free port, and
stops at fixture teardown. Use it through the fixtures at the bottom of this module (import
them into a ``conftest.py``)::

    from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401

    def test_x(fake_upstream):
        fake_upstream.behave(Behaviour.fail(429, retry_after=1), key="sk-a")  # one key
        fake_upstream.behave(Behaviour(chunk_delay=0.1))                      # everyone else
        ...
        [req] = fake_upstream.requests(key="sk-a")
        assert req.headers["x-team"] == "blue"

Routes (any path prefix is accepted, so a key's own ``base_url`` shows in the logged path):

- ``.../chat/completions`` (OpenAI; Azure under ``/openai/deployments/{dep}/``, which requires
  the ``api-version`` query), non-stream and SSE honouring ``stream_options.include_usage``;
- ``.../embeddings`` (OpenAI and Azure);
- ``.../responses`` (OpenAI's Responses API; Azure's at ``/openai/responses``, which requires the
  ``api-version`` query), a Response object or its event stream (``tests.fakes.wire_responses``);
- ``.../messages`` (Anthropic Messages, non-stream and SSE with the real event sequence);
- ``.../messages/count_tokens`` (Anthropic; ``input_tokens`` = the fake's prompt word count);
- ``.../models`` (OpenAI format, or Anthropic's when ``anthropic-version`` is sent);
- Gemini's ``.../models/{m}:generateContent`` etc. (``tests.fakes.wire_gemini``);
- Vertex AI's ``.../publishers/{google,anthropic}/models/{m}:{action}`` and ``.../endpoints``,
  with a bearer token from the fake OAuth endpoint ``POST /token`` (``tests.fakes.wire_vertex``).

Replies are deterministic (see ``tests.fakes.wire``). Every request is recorded
(:class:`RecordedRequest`) with the time it arrived and, for streams, when each chunk left.
Behaviour (:class:`Behaviour`) is switchable globally or per presented API key.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import api_rules, wire, wire_bedrock, wire_gemini, wire_responses, wire_vertex

MAX_DELAY = 30.0  # seconds: a fake never sleeps longer, whatever a test asks


@dataclass(eq=False)
class Gate:
    """Holds answers until the test opens it: a request in flight for exactly as long as needed.

    ``arrived`` is set when a request reaches the gate; ``release()`` lets every held request
    (and any later one) answer. A gate left closed gives way after ``MAX_DELAY``.
    """

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class Behaviour:
    """How the fake answers. Combine freely: ``delay`` then the ``mode``.

    Modes:
      ``ok``            a normal answer (streams spaced by ``chunk_delay``);
      ``status``        HTTP ``status`` with ``body`` (default: an error in the route's format)
                        and ``headers`` (e.g. Retry-After);
      ``reset``         the TCP connection is reset (RST) without an answer;
      ``close``         the connection is closed (FIN) without an answer;
      ``garbage``       200 with a body that is not JSON (SSE lines that are not JSON);
      ``stream_error``  ``after_chunks`` stream chunks, then an error event;
      ``stream_abort``  ``after_chunks`` stream chunks, then the connection is reset.

    ``eof_delay``: a stream's body ends this long after its last event (a real provider's
    end-of-body chunk can trail its last event by a network round).

    ``times``: apply to that many requests, then the next behaviour in line (key, then global,
    then healthy) takes over.

    ``gate``: after ``delay``, wait until the gate is released (see ``Gate``).
    """

    mode: str = "ok"
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    eof_delay: float = 0.0
    after_chunks: int = 2
    times: int | None = None
    gate: Gate | None = None

    @classmethod
    def fail(
        cls,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        body: Any = None,
        times: int | None = None,
    ) -> Behaviour:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls(
            mode="status",
            status=status,
            body=body if body is not None else message,
            headers=headers,
            times=times,
        )

    @classmethod
    def slow(cls, seconds: float, *, times: int | None = None) -> Behaviour:
        return cls(delay=seconds, times=times)


@dataclass
class RecordedRequest:
    """One request the fake received, and what it did with it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw_headers: list[tuple[str, str]]
    body: bytes
    json: Any
    received_at: float  # time.monotonic()
    api_key: str | None
    peer: tuple[str, int] | None = None  # the client's address: same peer = reused connection
    route: str = ""  # openai_chat | azure_chat | openai_embeddings | ... | unknown
    stream: bool = False
    mode: str = "ok"
    status: int | None = None
    usage: dict[str, int] | None = None  # the usage the fake reported (OpenAI names)
    sent_at: list[float] = field(default_factory=list)  # stream: each chunk's send time
    planned_chunks: int = 0
    completed: bool = False  # the whole response was sent
    disconnected: bool = False  # the peer went away before that
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def model(self) -> Any:
        return self.json.get("model") if isinstance(self.json, dict) else None


def presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.startswith("AWS4-HMAC-SHA256 "):
        return wire_bedrock.presented_key(headers)
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("api-key") or headers.get("x-api-key")


class FakeUpstream:
    """The fake provider server (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._global: list[Behaviour] = []
        self._by_key: dict[str, list[Behaviour]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._counter = 0

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstream:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10) or errors:
            raise RuntimeError(f"fake upstream did not start: {errors}")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a handler learns at once that its client went away (the
        # disconnect tests rely on it) and nothing outlives its connection.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
        try:
            future.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop = None

    # -- behaviour ------------------------------------------------------------------------
    def behave(self, *behaviours: Behaviour, key: str | None = None) -> None:
        """Queue ``behaviours`` for requests presenting ``key`` (or for all requests).

        Replaces what was set for that key (or globally). With several behaviours, each one
        with ``times`` set is used up before the next one applies.
        """
        with self._lock:
            if key is None:
                self._global = list(behaviours)
            else:
                self._by_key[key] = list(behaviours)

    def reset(self) -> None:
        """Healthy for everyone, empty log."""
        with self._lock:
            self._global = []
            self._by_key = {}
            self._log = []

    def _take(self, key: str | None) -> Behaviour:
        with self._lock:
            for queue in (self._by_key.get(key or "", []), self._global):
                while queue:
                    behaviour = queue[0]
                    if behaviour.times is None:
                        return behaviour
                    if behaviour.times > 0:
                        behaviour.times -= 1
                        if behaviour.times == 0:
                            queue.pop(0)
                        return behaviour
                    queue.pop(0)
        return Behaviour()

    # -- log ------------------------------------------------------------------------------
    def requests(
        self,
        *,
        key: str | None = None,
        path_contains: str | None = None,
        route: str | None = None,
    ) -> list[RecordedRequest]:
        """Recorded requests in arrival order, optionally filtered."""
        with self._lock:
            log = list(self._log)
        return [
            r
            for r in log
            if (key is None or r.api_key == key)
            and (path_contains is None or path_contains in r.path)
            and (route is None or r.route == route)
        ]

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Poll the log until ``predicate(log)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.requests()
            if predicate(log):
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"fake upstream log never matched; it holds {log!r}")
            time.sleep(0.01)

    # -- request handling -----------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = time.monotonic()
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            raw_headers=[(k, v) for k, v in request.headers.items()],
            body=raw,
            json=parsed,
            received_at=received,
            api_key=presented_key(headers),
            peer=_peer(request),
        )
        entry.route = _route(request.method, request.path)
        if entry.route == "models":
            azure = "/openai/" in entry.path
            flavour = "anthropic" if "anthropic-version" in headers else "openai"
            entry.route = "azure_models" if azure else f"{flavour}_models"
        entry.stream = bool(isinstance(parsed, dict) and parsed.get("stream"))
        with self._lock:
            self._log.append(entry)
            self._counter += 1
            rid_n = self._counter
        behaviour = self._take(entry.api_key)
        entry.mode = behaviour.mode
        try:
            if behaviour.delay:
                await asyncio.sleep(min(behaviour.delay, MAX_DELAY))
            if behaviour.gate is not None:
                behaviour.gate.arrived.set()
                await asyncio.to_thread(behaviour.gate.released.wait, MAX_DELAY)
            try:
                response = await self._respond(request, entry, behaviour, rid_n)
            except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
                # The real APIs validate a body against their schema before reading it: a
                # field of the wrong kind is their 400, never their 500.
                problem = f"Invalid request body: {exc}"
                error = (
                    wire.anthropic_error(400, problem)
                    if entry.route.startswith("anthropic")
                    else wire.openai_error(400, problem)
                )
                response = self._json(entry, 400, error)
            return response
        except asyncio.CancelledError:
            entry.disconnected = True
            raise
        except ConnectionError:
            entry.disconnected = True
            raise
        finally:
            entry.done.set()

    async def _respond(
        self, request: web.Request, entry: RecordedRequest, behaviour: Behaviour, n: int
    ) -> web.StreamResponse:
        anthropic = entry.route.startswith("anthropic")
        if behaviour.mode in ("reset", "close"):
            _drop(request, reset=behaviour.mode == "reset")
            await asyncio.sleep(1)  # cancelled when the connection is gone
            raise ConnectionResetError("dropped on purpose")
        if behaviour.mode == "status":
            body = behaviour.body
            if (body is None or isinstance(body, str)) and entry.route.startswith("bedrock"):
                message = body or f"fake upstream says {behaviour.status}"
                body, extra = wire_bedrock.error(behaviour.status, message)
                headers = {**extra, **behaviour.headers}
                return self._json(entry, behaviour.status, body, headers)
            if body is None or isinstance(body, str):
                message = body or f"fake upstream says {behaviour.status}"
                body = (
                    wire.anthropic_error(behaviour.status, message)
                    if anthropic
                    else wire_gemini.error(behaviour.status, message)
                    if entry.route.startswith("vertex")
                    else wire.openai_error(behaviour.status, message)
                )
            return self._json(entry, behaviour.status, body, behaviour.headers)
        if behaviour.mode == "garbage" and not entry.stream:
            entry.status = 200
            entry.completed = True
            return web.Response(
                status=200, body=b'{"id": "x", "choices": [ <<<', content_type="application/json"
            )

        body = entry.json if isinstance(entry.json, dict) else None
        if entry.route.startswith("bedrock"):
            return await self._bedrock(request, entry, behaviour, body or {})
        if entry.route == "vertex_token":
            status, answer = wire_vertex.token_answer(entry.body, f"{self.url}/token")
            return self._json(entry, status, answer)
        if entry.route.startswith("vertex"):
            return await self._vertex(request, entry, behaviour, body or {}, n)
        if entry.route.startswith("gemini"):
            return await self._gemini(request, entry, behaviour, body or {})
        if entry.route == "unknown":
            return self._json(entry, 404, wire.openai_error(404, f"no route {entry.path}"))
        if entry.route.endswith("_models"):
            if anthropic:
                return self._json(entry, 200, wire.anthropic_models())
            return self._json(entry, 200, wire.openai_models())
        if body is None:
            return self._json(entry, 400, wire.openai_error(400, "body must be a JSON object"))
        if entry.route.startswith("azure") and "api-version" not in entry.query:
            return self._json(entry, 404, wire.openai_error(404, "Resource not found"))

        if entry.route.endswith("_embeddings"):
            azure = entry.route == "azure_embeddings"
            model = _deployment(entry.path) if azure else str(body.get("model") or "")
            problem = api_rules.openai_embeddings_problem(body)
            if problem:
                return self._json(entry, 400, wire.openai_error(400, problem))
            payload, tokens = wire.embeddings(body, model)
            entry.usage = {"prompt_tokens": tokens, "completion_tokens": 0}
            return self._json(entry, 200, payload)

        if entry.route == "anthropic_count_tokens":
            if "anthropic-version" not in entry.headers or "max_tokens" in body:
                problem = "anthropic-version: header is required; max_tokens: not permitted"
                return self._json(entry, 400, wire.anthropic_error(400, problem))
            problem = api_rules.anthropic_messages_problem(body.get("messages"), entry.headers)
            if problem:
                return self._json(entry, 400, wire.anthropic_error(400, problem))
            count = wire.decide_anthropic(body).prompt_tokens
            return self._json(entry, 200, {"input_tokens": count})
        if anthropic:
            problem = api_rules.anthropic_request_problem(body, entry.headers)
            if problem:
                return self._json(entry, 400, wire.anthropic_error(400, problem))
            decision = wire.decide_anthropic(body)
            model = str(body["model"])
            rid = f"msg_fake{n:06d}"
            entry.usage = {
                "prompt_tokens": decision.prompt_tokens,
                "completion_tokens": decision.completion_tokens,
            }
            if not entry.stream:
                return self._json(entry, 200, wire.anthropic_message(decision, model, rid))
            events = wire.anthropic_stream_events(decision, model, rid)
            lines = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
            ]
            error = {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
            error_line = f"event: error\ndata: {json.dumps(error)}\n\n".encode()
            return await self._stream(request, entry, behaviour, lines, error_line)

        if entry.route.endswith("_responses"):
            return await self._responses(request, entry, behaviour, body, n)

        if not isinstance(body.get("messages"), list):
            return self._json(entry, 400, wire.openai_error(400, "'messages' is required"))
        azure = entry.route == "azure_chat"
        model = _deployment(entry.path) if azure else str(body.get("model") or "")
        if not model:
            return self._json(entry, 400, wire.openai_error(400, "you must provide a model"))
        problem = api_rules.openai_request_problem(body, model)
        if problem:
            return self._json(entry, 400, wire.openai_error(400, problem))
        refused = api_rules.cloud_chat_problem(entry.path, body)
        if refused:
            return self._json(entry, refused[0], wire.openai_error(refused[0], refused[1]))
        decision = wire.decide_openai(body)
        rid = f"chatcmpl-fake{n:06d}"
        if not entry.stream:
            entry.usage = {
                "prompt_tokens": decision.prompt_tokens,
                "completion_tokens": decision.completion_tokens,
            }
            served = wire.openai_served_model(model)
            return self._json(entry, 200, wire.openai_completion(decision, served, rid))
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        # Mistral reports usage at the end of every stream (it has no stream_options).
        include_usage = include_usage or entry.path.startswith("/mistral/")
        if include_usage:
            entry.usage = {
                "prompt_tokens": decision.prompt_tokens,
                "completion_tokens": decision.completion_tokens,
            }
        chunks = wire.openai_stream_chunks(
            decision, wire.openai_served_model(model), rid, include_usage=include_usage, azure=azure
        )
        lines = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
        lines.append(b"data: [DONE]\n\n")
        error = wire.openai_error(500, "The server had an error while processing your request.")
        error_line = b"data: " + json.dumps(error).encode() + b"\n\n"
        return await self._stream(request, entry, behaviour, lines, error_line)

    async def _gemini(
        self,
        request: web.Request,
        entry: RecordedRequest,
        behaviour: Behaviour,
        body: dict[str, Any],
        *,
        bearer: bool = False,
    ) -> web.StreamResponse:
        model = entry.path.rsplit("/", 1)[-1].split(":", 1)[0]
        if model.startswith("missing"):
            message = f"models/{model} is not found for API version v1beta"
            return self._json(entry, 404, wire_gemini.error(404, message))
        if entry.route == "gemini_embeddings":
            if "x-goog-api-key" not in entry.headers:
                return self._json(entry, 403, wire_gemini.error(403, "API key required"))
            return self._json(entry, 200, wire_gemini.embeddings(body))
        # Vertex (``bearer``) checked its OAuth token instead of the API key header.
        headers = {**entry.headers, "x-goog-api-key": "(bearer)"} if bearer else entry.headers
        problem = wire_gemini.request_problem(body, headers)
        if problem:
            return self._json(entry, problem[0], wire_gemini.error(*problem))
        if "BLOCKME" in json.dumps(body.get("contents")):
            # What Gemini answers when its safety filter blocks the reply: no content.
            blocked = wire_gemini.safety_block(model)
            if entry.route == "gemini_generate":
                return self._json(entry, 200, blocked)
            line = b"data: " + json.dumps(blocked).encode() + b"\r\n\r\n"
            return await self._stream(request, entry, behaviour, [line], line)
        decision = wire_gemini.decide(body)
        entry.usage = {
            "prompt_tokens": decision.prompt_tokens,
            "completion_tokens": decision.completion_tokens,
        }
        if entry.route == "gemini_generate":
            return self._json(entry, 200, wire_gemini.response(decision, model))
        entry.stream = True
        if entry.query.get("alt") != "sse":
            return self._json(entry, 400, wire_gemini.error(400, "this fake streams SSE only"))
        lines = [
            b"data: " + json.dumps(e).encode() + b"\r\n\r\n"
            for e in wire_gemini.stream_events(decision, model)
        ]
        error_line = (
            b"data: " + json.dumps(wire_gemini.error(500, "Internal error")).encode() + b"\r\n\r\n"
        )
        return await self._stream(request, entry, behaviour, lines, error_line)

    async def _vertex(
        self,
        request: web.Request,
        entry: RecordedRequest,
        behaviour: Behaviour,
        body: dict[str, Any],
        n: int,
    ) -> web.StreamResponse:
        if not wire_vertex.token_valid(entry.headers):
            return self._json(entry, 401, wire_vertex.unauthenticated())
        if entry.route == "vertex_endpoints":
            return self._json(entry, 200, {"endpoints": []})
        model = entry.path.rsplit("/", 1)[-1].split(":", 1)[0]
        if model.startswith("missing"):
            return self._json(entry, 404, wire_vertex.not_found(model))
        if entry.route == "vertex_embeddings":
            return self._json(entry, 200, wire_vertex.embeddings(body))
        if entry.route.startswith("vertex_gemini"):
            # Same wire format as AI Studio, with the bearer token in place of the API key.
            entry.route = entry.route.replace("vertex_", "")
            return await self._gemini(request, entry, behaviour, body, bearer=True)
        problem = wire_vertex.anthropic_problem(body)
        problem = problem or api_rules.anthropic_request_problem(
            {**body, "model": model}, {**entry.headers, "anthropic-version": "2023-06-01"}
        )
        if problem:
            return self._json(entry, 400, wire.anthropic_error(400, problem))
        decision = wire.decide_anthropic(body)
        rid = f"msg_vrtx{n:06d}"
        entry.usage = {
            "prompt_tokens": decision.prompt_tokens,
            "completion_tokens": decision.completion_tokens,
        }
        if entry.route == "vertex_anthropic_raw":
            return self._json(entry, 200, wire.anthropic_message(decision, model, rid))
        entry.stream = True
        events = wire.anthropic_stream_events(decision, model, rid)
        lines = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        error_line = f"event: error\ndata: {json.dumps(error)}\n\n".encode()
        return await self._stream(request, entry, behaviour, lines, error_line)

    async def _bedrock(
        self,
        request: web.Request,
        entry: RecordedRequest,
        behaviour: Behaviour,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        def fail(status: int, message: str, etype: str | None = None) -> web.Response:
            payload, headers = wire_bedrock.error(status, message, etype)
            return self._json(entry, status, payload, headers)

        problem = wire_bedrock.signature_problem(
            request.method, request.raw_path, entry.headers, entry.body
        )
        if problem:
            return fail(problem[0], problem[2], problem[1])
        if entry.route == "bedrock_models":
            return self._json(entry, 200, wire_bedrock.foundation_models())
        model = wire_bedrock.model_of(request.raw_path)
        if "missing" in model:
            return fail(
                404, "Could not resolve the foundation model from the provided model identifier."
            )
        if entry.route == "bedrock_invoke":
            status, payload = wire_bedrock.embeddings(model, body)
            if status != 200:
                return fail(status, payload["message"])
            return self._json(entry, 200, payload)
        problem_text = wire_bedrock.request_problem(body)
        if problem_text:
            return fail(400, problem_text)
        decision = wire_bedrock.decide(body)
        entry.usage = {
            "prompt_tokens": decision.prompt_tokens,
            "completion_tokens": decision.completion_tokens,
        }
        guardrail = bool(body.get("guardrailConfig")) and "BLOCKME" in json.dumps(body["messages"])
        if entry.route == "bedrock_converse":
            return self._json(entry, 200, wire_bedrock.converse(decision, guardrail=guardrail))
        entry.stream = True
        events = wire_bedrock.stream_events(decision)
        frames = [wire_bedrock.event_frame(name, data) for name, data in events]
        if behaviour.mode in ("stream_error", "stream_abort"):
            frames = frames[: 1 + behaviour.after_chunks]
        entry.planned_chunks = len(frames)
        response = web.StreamResponse(
            status=200, headers={"content-type": wire_bedrock.EVENTSTREAM}
        )
        entry.status = 200
        await response.prepare(request)
        for i, raw in enumerate(frames):
            if i and behaviour.chunk_delay:
                await asyncio.sleep(min(behaviour.chunk_delay, MAX_DELAY))
            # Frames leave in two pieces, split mid-prelude: the reader must reassemble them.
            await response.write(raw[:7])
            await response.write(raw[7:])
            entry.sent_at.append(time.monotonic())
        if behaviour.mode == "stream_error":
            await response.write(
                wire_bedrock.exception_frame("modelStreamErrorException", "Model stream error")
            )
        elif behaviour.mode == "stream_abort":
            _drop(request, reset=True)
            await asyncio.sleep(1)
            raise ConnectionResetError("stream aborted on purpose")
        await response.write_eof()
        entry.completed = True
        return response

    async def _responses(
        self,
        request: web.Request,
        entry: RecordedRequest,
        behaviour: Behaviour,
        body: dict[str, Any],
        n: int,
    ) -> web.StreamResponse:
        items = wire_responses.items_of(body)
        previous = body.get("previous_response_id")
        if previous:
            before = wire_responses.history(str(previous))
            if before is None:
                error = wire.openai_error(
                    404,
                    f"Previous response with id '{previous}' not found.",
                    code="previous_response_not_found",
                )
                error["error"]["param"] = "previous_response_id"
                return self._json(entry, 404, error)
            items = before + items
        model = str(body.get("model") or "")
        decision = wire_responses.decide(body, items)
        rid = f"resp_fake{n:06d}"
        entry.usage = {
            "prompt_tokens": decision.prompt_tokens,
            "completion_tokens": decision.completion_tokens,
        }
        output = wire_responses.output_items(decision, n)
        if body.get("store", True):
            wire_responses.remember(rid, items, output)
        if not entry.stream:
            answer = wire_responses.response(
                body,
                model,
                rid,
                status="completed",
                output=output,
                use=wire_responses.usage(decision),
            )
            return self._json(entry, 200, answer)
        events = wire_responses.stream_events(body, model, rid, decision, n)
        error = {
            "type": "error",
            "code": "server_error",
            "message": "The server had an error while processing your request.",
            "param": None,
            "sequence_number": len(events),
        }
        error_line = f"event: error\ndata: {json.dumps(error)}\n\n".encode()
        lines = wire_responses.sse_lines(events)
        return await self._stream(request, entry, behaviour, lines, error_line)

    def _json(
        self,
        entry: RecordedRequest,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        entry.status = status
        entry.completed = True
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = web.Response(status=status, body=body, content_type="application/json")
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    async def _stream(
        self,
        request: web.Request,
        entry: RecordedRequest,
        behaviour: Behaviour,
        lines: list[bytes],
        error_line: bytes,
    ) -> web.StreamResponse:
        if behaviour.mode == "garbage":
            lines = [b"data: {this is not json\n\n", b"data: [DONE]\n\n"]
        elif behaviour.mode in ("stream_error", "stream_abort"):
            # Skip framing-only lines so that ``after_chunks`` counts content the client sees.
            lines = lines[: _content_offset(lines) + behaviour.after_chunks]
        entry.planned_chunks = len(lines)
        response = web.StreamResponse(
            status=200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        entry.status = 200
        await response.prepare(request)
        for i, line in enumerate(lines):
            if i and behaviour.chunk_delay:
                await asyncio.sleep(min(behaviour.chunk_delay, MAX_DELAY))
            await response.write(line)
            entry.sent_at.append(time.monotonic())
        if behaviour.mode == "stream_error":
            await response.write(error_line)
            entry.sent_at.append(time.monotonic())
        elif behaviour.mode == "stream_abort":
            _drop(request, reset=True)
            await asyncio.sleep(1)
            raise ConnectionResetError("stream aborted on purpose")
        if behaviour.eof_delay:
            await asyncio.sleep(min(behaviour.eof_delay, MAX_DELAY))
        await response.write_eof()
        entry.completed = True
        return response


def _peer(request: web.Request) -> tuple[str, int] | None:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return (str(peername[0]), int(peername[1])) if peername else None


def _route(method: str, path: str) -> str:
    if method == "POST" and path == "/token":
        return "vertex_token"
    if method == "GET" and "/locations/" in path and path.endswith("/endpoints"):
        return "vertex_endpoints"
    if method == "POST" and "/publishers/" in path and ":" in path.rsplit("/", 1)[-1]:
        publisher = path.split("/publishers/", 1)[1].split("/", 1)[0]
        action = path.rsplit(":", 1)[-1]
        return {
            ("google", "generateContent"): "vertex_gemini_generate",
            ("google", "streamGenerateContent"): "vertex_gemini_stream",
            ("google", "predict"): "vertex_embeddings",
            ("anthropic", "rawPredict"): "vertex_anthropic_raw",
            ("anthropic", "streamRawPredict"): "vertex_anthropic_stream",
        }.get((publisher, action), "unknown")
    bedrock = wire_bedrock.route(method, path)
    if bedrock is not None:
        return bedrock
    if method == "POST" and ":" in path.rsplit("/", 1)[-1]:
        action = path.rsplit(":", 1)[-1]
        return {
            "generateContent": "gemini_generate",
            "streamGenerateContent": "gemini_stream",
            "batchEmbedContents": "gemini_embeddings",
        }.get(action, "unknown")
    azure = "/openai/deployments/" in path
    if method == "POST" and path.endswith("/chat/completions"):
        return "azure_chat" if azure else "openai_chat"
    if method == "POST" and path.endswith("/responses"):
        return "azure_responses" if path.endswith("/openai/responses") else "openai_responses"
    if method == "POST" and path.endswith("/embeddings"):
        return "azure_embeddings" if azure else "openai_embeddings"
    if method == "POST" and path.endswith("/messages/count_tokens"):
        return "anthropic_count_tokens"
    if method == "POST" and path.endswith("/messages"):
        return "anthropic_messages"
    if method == "GET" and path.endswith("/models"):
        return "models"
    return "unknown"


def _deployment(path: str) -> str:
    tail = path.split("/openai/deployments/", 1)[1]
    return tail.split("/", 1)[0]


def _content_offset(lines: list[bytes]) -> int:
    """Index of the first line that carries content (after role/start/ping framing)."""
    for i, line in enumerate(lines):
        if (
            b'"content": ""' in line
            or b"message_start" in line
            or b"content_block_start" in line
            or b'"type": "ping"' in line
            or b'"choices": []' in line
            or b'"type": "response.created"' in line
            or b'"type": "response.in_progress"' in line
            or b'"type": "response.output_item.added"' in line
            or b'"type": "response.content_part.added"' in line
        ):
            continue
        return i
    return len(lines)


def _drop(request: web.Request, *, reset: bool) -> None:
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[FakeUpstream]:
    """One fake provider server for the session (use ``fake_upstream`` in tests)."""
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def fake_upstream(fake_upstream_server: FakeUpstream) -> Iterator[FakeUpstream]:
    """The fake provider, healthy and with an empty log at the start of the test."""
    fake_upstream_server.reset()
    yield fake_upstream_server
    fake_upstream_server.reset()
