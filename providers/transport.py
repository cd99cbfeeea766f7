"""The transport under the HTTP seam: aiohttp driven directly, answers as ``httpx.Response``.

``providers.http.send`` is the only caller. httpx stays the interface (the response object,
the exception types every caller catches) but not the client: building an ``httpx.Request``,
running it through ``AsyncClient.send`` (auth, redirects, cookies, event hooks) and handing it
to an aiohttp transport cost more than the aiohttp call itself. Here one pooled
``aiohttp.ClientSession`` per event loop sends the request, and its answer is wrapped in an
``httpx.Response`` whose body stream reads the aiohttp response: bodies are still decoded by
httpx, relayed chunk by chunk, and closing the response releases (or, mid-body, closes) the
upstream connection.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Any

import aiohttp
import httpx
from django.conf import settings
from yarl import URL

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_default_headers: dict[str, str] = {}


def _defaults() -> dict[str, str]:
    """The headers httpx's client sends by default (accept, accept-encoding with the decoders
    httpx has, user-agent, connection): upstreams see the same requests as before."""
    if not _default_headers:
        # Read off a client over a transport that is never called: httpx's default transport
        # would import httpcore (h11, h2 and, where installed, trio and anyio with it), ~5 MB
        # per worker and ~0.1 s on a worker's first proxied call, for a pool nothing uses.
        with httpx.Client(transport=httpx.MockTransport(_never_sent), trust_env=False) as client:
            _default_headers.update(client.headers)
    return _default_headers


def _never_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the client that holds httpx's default headers sends nothing")


def session() -> aiohttp.ClientSession:
    """The running loop's shared session, created on first use (pools are bound to a loop;
    a server process has one loop, so this is one pool per process)."""
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        connector = aiohttp.TCPConnector(
            limit=settings.GATEWAY_HTTP_MAX_CONNECTIONS or 0,
            keepalive_timeout=30.0,
            ssl=httpx.create_ssl_context(),
        )
        current = _sessions[loop] = aiohttp.ClientSession(
            connector=connector,
            headers=_defaults(),
            # The session serves every instance and account: a cookie one upstream sets must
            # never ride along on another's request. Upstream APIs authenticate by header.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies are decoded by httpx (as before), so its content-encoding handling holds.
            auto_decompress=False,
            trust_env=False,
        )
    return current


async def close_session() -> None:
    """Close the running loop's session (process shutdown, test teardown)."""
    current = _sessions.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()


_urls: dict[str, URL] = {}


def _url(url: str) -> URL:
    """``url`` parsed once: an instance's endpoints are a handful of fixed strings."""
    parsed = _urls.get(url)
    if parsed is None:
        if len(_urls) >= 4096:  # bounded whatever the configuration
            _urls.clear()
        parsed = _urls[url] = URL(url, encoded=False)
    return parsed


def url_as_sent(url: str) -> str:
    """``url`` as the transport puts it on the wire (its path normalised: ``%3A`` goes out as
    ``:``): what a request signature must cover."""
    return str(_url(url))


def translate_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx exception a caller expects for an aiohttp failure, or None if it is none.

    A refused port, a reset or a closed connection is not a timeout (the client would be told
    "timed out" about an instance that is down); only aiohttp's own timeouts are.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.SocketTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientResponseError):  # a malformed status line or headers
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        return httpx.ReadError(message)
    return None


@lru_cache(maxsize=256)  # bounded whatever the configuration
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """aiohttp's (immutable) timeout for an instance's connect and read timeouts, built once:
    instances have a handful of distinct pairs."""
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads it: chunks as they arrive."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = translate_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        # A body read to its end returns the connection to the pool; one closed mid-way
        # (the client went away, a stream is abandoned) closes the connection with it.
        self._response.release()


async def request(
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    body: bytes | None,
    connect: float,
    read: float,
    stream: bool,
) -> httpx.Response:
    """One upstream request; the body is read unless ``stream`` (then the caller relays it
    and must ``aclose`` the response). Failures raise httpx's transport exceptions."""
    timeout = _timeout(connect, read)
    try:
        response = await session().request(
            method,
            _url(url),
            params=params or None,
            headers=headers,
            data=body,
            allow_redirects=False,  # upstreams never redirect; following one could leak a key
            timeout=timeout,
        )
        if not stream:
            content = await response.read()  # read to its end: the connection is released
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is None:
            raise
        raise mapped from exc
    if stream:
        return httpx.Response(response.status, headers=response.raw_headers, stream=_Body(response))
    answer = httpx.Response(
        response.status, headers=response.raw_headers, stream=httpx.ByteStream(content)
    )
    if "content-encoding" in response.headers:
        answer.read()  # decodes the content-encoding, like httpx's own client
    else:
        # Nothing to decode: the body as read is the content. httpx's read() would pass it
        # through a decoder and a chunker to the same bytes, ~4% of a proxied request's CPU.
        # These are the attributes read() leaves set (httpx 0.28 keeps the body in
        # ``_content``); tests/providers/test_http_seam.py checks that both ways answer alike.
        answer._content = content
        answer._num_bytes_downloaded = len(content)
        answer.is_stream_consumed = answer.is_closed = True
    return answer
