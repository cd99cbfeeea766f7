"""What an endpoint is: a spec the one flow runs, so adding an endpoint is adding a spec.

A spec says how to check a body, which alias and capability it needs, how to build the
upstream request for a candidate, how to read a whole answer, how to translate a stream, and
in which format errors are told. Specs are module-level constants: nothing is allocated per
request to find one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.routing.table import Candidate, RouteTable
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot

if TYPE_CHECKING:
    from gateway.proxy.context import RequestContext


@dataclass(slots=True)
class Call:
    """One request as its spec prepared it: done once, before any candidate is tried."""

    alias: str
    body: dict[str, Any]
    stream: bool = False
    #: OpenAI-shaped body the token estimates read (``messages`` or ``input``).
    estimate: dict[str, Any] = field(default_factory=dict)
    #: The client asked for the usage chunk in a stream (``stream_options.include_usage``).
    include_usage: bool = False
    #: The model name the client asked for (Anthropic clients echo it back).
    requested: str = ""
    #: The body translated for OpenAI-type instances, when the endpoint needs one.
    translated: dict[str, Any] | None = None
    #: The endpoint's own form of the translation (``translated`` is its body), if it has one.
    translation: Any = None
    #: Why ``translated`` is missing (shown as a 400 if such an instance is chosen).
    untranslatable: str = ""
    #: The client's request headers (lowercase names); some are forwarded to natives.
    client_headers: dict[str, str] = field(default_factory=dict)
    #: What one endpoint keeps per request beyond the above (its own keys).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LocalAnswer:
    """An answer computed in the gateway for this candidate instead of sent upstream (token
    counts for instances that have no counting endpoint). It still takes the instance's
    turn in the attempt loop: limits, usage and the attempt trail see it like a call."""

    compute: Callable[[], Awaitable[bytes]]


Build = Callable[[Call, Adapter, Candidate, KeySnapshot | None], "UpstreamRequest | LocalAnswer"]
Parse = Callable[[Call, Adapter, bytes], tuple[bytes, Usage]]
Translator = Callable[[Call, Adapter], StreamTranslator]
Load = Callable[[Call, "RequestContext"], Awaitable[None]]
AfterAnswer = Callable[[Call, "RequestContext", bytes], Awaitable[None]]
AfterStream = Callable[[Call, "RequestContext", StreamTranslator], Awaitable[None]]
AnswerHeaders = Callable[[Call, Candidate], dict[str, str]]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """A ``POST`` endpoint proxied to provider instances.

    ``name`` is the usage record's endpoint; ``error_format`` is ``"openai"`` or
    ``"anthropic"``; ``need`` the capability the alias's mappings must not deny;
    ``validate`` checks the parsed body (raising ``InvalidRequest``); ``prepare`` resolves
    the alias and does per-request work once; ``build``/``parse`` per candidate;
    ``stream`` (None: the endpoint never streams) makes the stream translator;
    ``broken_tail`` ends a stream the upstream broke off. Optional async steps: ``load``
    once before any candidate is tried (state the body refers to); ``after_answer`` with a
    whole answer before it is sent, ``after_stream`` once a stream's upstream ended, before
    its closing events go out (e.g. store the answer: never before the first byte).
    ``answer_headers`` adds headers to an answer (whole or streamed) for the candidate that
    served it.
    """

    name: str
    error_format: str
    need: str
    validate: Callable[[Any], dict[str, Any]]
    prepare: Callable[[RouteTable, dict[str, Any]], Call]
    build: Build
    parse: Parse
    stream: Translator | None = None
    broken_tail: bytes = b""
    load: Load | None = None
    after_answer: AfterAnswer | None = None
    after_stream: AfterStream | None = None
    answer_headers: AnswerHeaders | None = None


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """A ``GET`` endpoint answered from the route table (no upstream call)."""

    name: str
    handle: Callable[..., Awaitable[dict[str, Any]]]
