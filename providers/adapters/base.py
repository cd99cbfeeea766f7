"""What every provider adapter provides: request building and response translation.

The gateway speaks OpenAI's chat-completions format to its clients; an adapter turns such a
request into its provider's wire format and the provider's answer (whole or streamed) back into
OpenAI's format. Adapters do no I/O: ``providers.http`` sends what they build.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson
from httpx_sse import EventSource

from providers import redaction
from providers.snapshot import KeySnapshot, ProviderSnapshot


@dataclass(slots=True)
class Usage:
    """Token counts as the upstream reported them (OpenAI names)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    #: The model the upstream's reply says served it (OpenAI answers ``gpt-4o`` with
    #: ``gpt-4o-2024-08-06``); empty when the reply does not say.
    model: str = ""

    def named(self, model: Any) -> Usage:
        """This usage, naming ``model`` as the served model when it is a non-empty string."""
        if isinstance(model, str) and model:
            self.model = model
        return self

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage:
        if not usage:
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
        )


@dataclass(slots=True)
class UpstreamRequest:
    """A request ready to send. ``headers`` excludes the instance's custom headers: the HTTP
    seam adds those, so no code path can forget them."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    #: Headers only known at send time (an OAuth token minted with I/O); the seam awaits it and
    #: answers 401 on :class:`CredentialError`, so key failover moves on.
    authorize: Callable[[], Awaitable[dict[str, str]]] | None = field(default=None, repr=False)


class StreamTranslator:
    """Turns upstream SSE events into OpenAI ``chat.completion.chunk`` SSE lines.

    ``feed`` takes one event's ``data`` (and ``event`` name for formats that use it) and returns
    the bytes to send to the client (possibly none). ``usage`` holds what the stream reported.
    ``error`` is set when the upstream sent an error event. ``started`` becomes true once a
    chunk with content (text, tool call, finish) has been produced.
    """

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.usage = Usage()
        #: The model the upstream's events say serves the stream ("" until one does).
        self.served_model = ""
        self.error: dict[str, Any] | None = None
        self.started = False
        self.done = False

    def feed(self, data: str, event: str = "") -> list[bytes]:
        raise NotImplementedError

    def event_object(
        self, data: str, *, error_type: str = "api_error", what: str = "event"
    ) -> dict[str, Any] | None:
        """One event's ``data`` as a JSON object, or None to skip it; data that is not JSON
        at all sets ``error`` (the stream is broken, not merely unusual)."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.error = {"message": f"upstream sent a malformed stream {what}", "type": error_type}
            return None
        return payload if isinstance(payload, dict) else None

    def openai_chunk(self, data: str, *, error_type: str = "api_error") -> dict[str, Any] | None:
        """One OpenAI ``chat.completion.chunk`` as an object, or None to skip it. Besides
        unreadable data, an error chunk (``{"error": ...}`` without choices, which servers
        send mid-stream) sets ``error``."""
        chunk = self.event_object(data, error_type=error_type, what="chunk")
        if chunk is not None and not self.served_model:
            model = chunk.get("model")
            if isinstance(model, str):
                self.served_model = model
        if chunk is not None and "error" in chunk and not chunk.get("choices"):
            err = chunk["error"]
            self.error = dict(err) if isinstance(err, Mapping) else {"message": str(err)}
            return None
        return chunk

    def finish(self) -> list[bytes]:
        """Bytes to send after the upstream stream ended (e.g. ``data: [DONE]``)."""
        if self.done:
            return []
        self.done = True
        return [b"data: [DONE]\n\n"]

    def fail_events(self, message: str, etype: str, code: str | None) -> list[bytes] | None:
        """This format's own way to tell a failure mid-stream, or None: the relay then sends
        an error event in the endpoint's error format."""
        return None


def sse(payload: Any) -> bytes:
    """One OpenAI-style SSE ``data:`` line from a JSON-serialisable payload."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class Adapter:
    """Base for adapters. Subclasses set ``provider_type`` and override what differs."""

    provider_type: ClassVar[str] = ""
    #: True for adapters answered inside the process (``mock``): the seam calls ``respond``.
    in_process: ClassVar[bool] = False
    #: Whether the wire format is OpenAI's (so OpenAI bodies pass through untranslated).
    openai_wire: ClassVar[bool] = True
    #: Whether the upstream serves OpenAI's Responses API (``responses_request``); the others
    #: get Responses requests translated to chat completions.
    responses_native: ClassVar[bool] = False

    # -- chat -------------------------------------------------------------------------------
    def chat_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        raise NotImplementedError

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        """Translate a successful non-streaming body to OpenAI's format; report usage."""
        raise NotImplementedError

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        raise NotImplementedError

    def stream_events(self, response: httpx.Response) -> AsyncIterator[Any]:
        """The upstream stream's events (``.event``, ``.data``) as they arrive: SSE here;
        adapters of binary-framed streams (Bedrock's event-stream) decode their own."""
        return EventSource(response).aiter_sse()

    # -- Anthropic Messages natively (Anthropic's models, wherever they are hosted) -----------
    def messages_native(self, model: str) -> bool:
        """Whether Messages API requests for ``model`` go upstream natively (untranslated)."""
        return False

    def messages_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        body: dict[str, Any],
        stream: bool,
        client_headers: Mapping[str, str],
        path: str = "messages",
    ) -> UpstreamRequest:
        """A native Messages API request (only where ``messages_native``)."""
        raise UnsupportedOperation(f"{self.provider_type} instances take no native Messages")

    def native_answer(self, payload: bytes) -> bool:
        """Whether a successful answer is a native Messages API answer (relayed as is)."""
        return False

    def messages_stream(self, *, model: str) -> StreamTranslator | None:
        """The stream translator of native Messages requests; None: the chat translation."""
        return None

    # -- responses (only where ``responses_native``) ----------------------------------------
    def responses_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        raise UnsupportedOperation(f"{self.provider_type} instances do not serve the Responses API")

    # -- embeddings -------------------------------------------------------------------------
    def embeddings_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        raise UnsupportedOperation(f"{self.provider_type} instances do not serve embeddings")

    def embeddings_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        return payload, Usage.from_openai(data.get("usage")).named(data.get("model"))

    # -- health -----------------------------------------------------------------------------
    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        """The cheapest request that proves the instance and key work (list models)."""
        raise NotImplementedError

    # -- errors -----------------------------------------------------------------------------
    def error_details(self, status: int, payload: bytes) -> tuple[str, str, str | None]:
        """(message, type, code) from an upstream error body, whatever its format."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            # Not cut short here: callers redact first, then truncate (providers.redaction).
            text = payload[: redaction.MAX_SCAN].decode("utf-8", "replace").strip()
            return (text or f"upstream returned HTTP {status}", "upstream_error", None)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            return (
                str(err.get("message") or f"upstream returned HTTP {status}"),
                str(err.get("type") or "upstream_error"),
                str(err["code"]) if err.get("code") is not None else None,
            )
        if isinstance(err, str):
            return err, "upstream_error", None
        return f"upstream returned HTTP {status}", "upstream_error", None


#: What reading a client body's field of an unexpected kind raises: iterating a number,
#: ``.get`` on a string, ``int("s")``. Caught where a body is read as its API defines it.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError)


class CredentialError(Exception):
    """A key credential could not be turned into upstream auth (e.g. a token refused)."""


class UnsupportedOperation(Exception):
    """The adapter cannot do what was asked (e.g. embeddings on Anthropic)."""
