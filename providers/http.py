"""The one outbound HTTP seam: every request to a provider instance goes through ``send``.

It owns the process's shared ``httpx.AsyncClient`` (pooled keep-alive connections over an
aiohttp transport: stock httpx's own transport costs about 1.5 ms more per request, more than
the gateway's whole overhead budget) and adds each instance's custom headers, so that no code
path (chat, embeddings, health probes) can forget them and no instance's headers can leak into
another's request.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any

import aiohttp
import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from providers import betas
from providers.adapters import get_adapter
from providers.adapters.base import UpstreamRequest
from providers.snapshot import ProviderSnapshot

logger = logging.getLogger(__name__)


class _NoCookieJar(CookieJar):
    """A cookie jar that never keeps a cookie (see :class:`_NoCookies`)."""

    def set_cookie(self, cookie: object) -> None:
        return

    def extract_cookies(self, response: object, request: object) -> None:
        return


class _NoCookies(httpx.Cookies):
    """httpx's cookie store, never storing anything and skipping the per-response parse.

    The client is shared by every instance and key of the process: a cookie set by one
    account's upstream (a load balancer's session cookie, say) must not ride along on another
    account's requests. Upstream APIs authenticate by header, so nothing needs cookies.
    (The parse alone, which builds a ``urllib`` request per response, was 4% of the CPU.)
    """

    def __init__(self) -> None:
        super().__init__(_NoCookieJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return


_NO_COOKIES = _NoCookies()


class _Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` with :class:`_NoCookies` as its cookie store."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        return


def _session_factory(limits: httpx.Limits) -> Callable[[], aiohttp.ClientSession]:
    """The aiohttp session under httpx, as httpx-aiohttp builds it but with no cookie jar:
    aiohttp keeps and replays cookies by itself otherwise (for host names; it ignores those
    set by IP addresses)."""

    def make() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=httpx.create_ssl_context(),
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return make


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def get_client() -> httpx.AsyncClient:
    """The running loop's shared client, created on first use.

    One per event loop because connection pools are bound to their loop; a server process has
    one loop, so this is one client per process.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        limits = httpx.Limits(
            max_connections=settings.GATEWAY_HTTP_MAX_CONNECTIONS,
            max_keepalive_connections=settings.GATEWAY_HTTP_MAX_KEEPALIVE,
            keepalive_expiry=30.0,
        )
        client = _Client(
            transport=AiohttpTransport(limits=limits, client=_session_factory(limits)),
            limits=limits,
            # Upstreams never redirect API calls; following one could leak a key elsewhere.
            follow_redirects=False,
            trust_env=False,
        )
        _clients[loop] = client
    return client


async def close_client() -> None:
    """Close the running loop's client (process shutdown)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def instance_headers(
    provider: ProviderSnapshot,
    headers: Mapping[str, str],
    client_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The final header set of one upstream request to ``provider``.

    The adapter's headers (auth, content type, ``anthropic-version``, the key's organization)
    and the instance's custom headers are the gateway's: a forwarded client header never
    replaces one of them, whatever its case. Only client headers the instance allow-lists
    are forwarded (never the client's own credentials: validators refuse to allow-list
    them), and of an ``anthropic-beta`` only the flags the instance admits (providers.betas).
    Custom headers come last and win over the adapter's.
    """
    out = dict(headers)
    custom = {name.lower() for name, _ in provider.custom_headers}
    if client_headers and provider.forward_headers:
        taken = {name.lower() for name in out} | custom
        for name, value in client_headers.items():
            lowered = name.lower()
            if lowered not in provider.forward_headers or lowered in taken:
                continue
            if lowered == betas.HEADER:
                value = betas.filter_betas(value, provider.anthropic_beta_allow)
                if not value:
                    continue
            out[name] = value
    if custom:
        out = {name: value for name, value in out.items() if name.lower() not in custom}
        for name, value in provider.custom_headers:
            out[name] = value
    return out


_parsed_urls: dict[str, httpx.URL] = {}


def _url(url: str) -> httpx.URL:
    """``url`` parsed once: an instance's endpoints are a handful of fixed strings, and
    httpx's URL parser was half the cost of building each request (13 of 28 us)."""
    parsed = _parsed_urls.get(url)
    if parsed is None:
        if len(_parsed_urls) >= 4096:  # bounded whatever the configuration
            _parsed_urls.clear()
        parsed = _parsed_urls[url] = httpx.URL(url)
    return parsed


def timeout_for(provider: ProviderSnapshot, *, deadline: float | None = None) -> httpx.Timeout:
    """Connect and read split per instance; ``deadline`` (seconds left) caps both."""
    read = provider.timeout if deadline is None else max(0.001, min(provider.timeout, deadline))
    connect = (
        provider.connect_timeout
        if deadline is None
        else max(0.001, min(provider.connect_timeout, deadline))
    )
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


async def send(
    provider: ProviderSnapshot,
    request: UpstreamRequest,
    *,
    client_headers: Mapping[str, str] | None = None,
    stream: bool = False,
    deadline: float | None = None,
) -> httpx.Response:
    """Send ``request`` to ``provider``; the caller must close the response (``aclose``).

    With ``stream`` the body is not read: the caller relays it chunk by chunk.
    In-process adapters (``mock``) answer here without a network round trip, after the same
    header handling, so tests of the seam cover them too.
    """
    headers = instance_headers(provider, request.headers, client_headers)
    adapter = get_adapter(provider.provider_type)
    if adapter.in_process:
        request.headers = headers
        response: httpx.Response = await adapter.respond(request)  # type: ignore[attr-defined]
        if not stream:
            await response.aread()
        return response
    client = get_client()
    built = client.build_request(
        request.method,
        _url(request.url),
        params=request.params or None,
        headers=headers,
        content=request.body or None,
        timeout=timeout_for(provider, deadline=deadline),
    )
    try:
        return await client.send(built, stream=stream)
    except httpx.TimeoutException as exc:
        raise _unmask_timeout(exc, built) from exc.__cause__


#: How long a stream whose last event has arrived may take to end its body, and how many more
#: events it may send meanwhile, before its connection is given up rather than reused.
TAIL_SECONDS = 2.0
TAIL_EVENTS = 16


async def close_after_tail(response: httpx.Response, rest: AsyncIterator[Any]) -> None:
    """Read the end of a stream whose last event ([DONE], ``message_stop``) has been relayed,
    then close it.

    The relay stops at that event, but the body's end (the empty chunk) may come a moment
    later; a response closed before it has been read takes its connection down with it, and
    the next call to that provider pays a new TCP and TLS handshake. Read to its end, the
    connection goes back to the pool. ``rest`` is the iterator the relay was reading from
    (the body can be iterated only once). Bounded by :data:`TAIL_SECONDS` and
    :data:`TAIL_EVENTS`, and run after the client's response has ended, so nobody waits on it.
    """
    try:
        async with asyncio.timeout(TAIL_SECONDS):
            extra = 0
            async for _ in rest:
                extra += 1
                if extra > TAIL_EVENTS:
                    break
    except Exception as exc:  # a tail that times out or breaks only costs the connection
        logger.debug("stream tail not read to its end (%s): connection dropped", type(exc).__name__)
    finally:
        await response.aclose()


def _unmask_timeout(exc: httpx.TimeoutException, request: httpx.Request) -> httpx.TransportError:
    """Undo httpx-aiohttp's mapping of *every* aiohttp connection error to ``ConnectTimeout``.

    A refused port, a reset or a closed connection is not a timeout: reporting it as one gives
    the client a 504 "timed out" for an instance that is down.
    """
    cause = exc.__cause__
    if cause is None or isinstance(cause, asyncio.TimeoutError):  # a real timeout
        return exc
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc) or repr(cause), request=request)
    if isinstance(cause, aiohttp.ClientConnectionError):
        return httpx.ReadError(str(exc) or repr(cause), request=request)
    return exc
