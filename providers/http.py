"""The one outbound HTTP seam: every request to a provider instance goes through ``send``.

It adds each instance's custom headers, so that no code path (chat, embeddings, health probes)
can forget them and no instance's headers can leak into another's request, and sends through
the process's pooled keep-alive connections (``providers.transport``: aiohttp driven directly,
answering with ``httpx.Response`` and raising httpx's exceptions, so callers see httpx).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from providers import betas, transport
from providers.adapters import get_adapter
from providers.adapters.base import CredentialError, UpstreamRequest
from providers.snapshot import ProviderSnapshot

logger = logging.getLogger(__name__)


async def close_client() -> None:
    """Close the running loop's connection pool (process shutdown)."""
    await transport.close_session()


def instance_headers(
    provider: ProviderSnapshot,
    headers: Mapping[str, str],
    client_headers: Mapping[str, str] | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The final header set of one upstream request to ``provider``.

    The adapter's headers (auth, content type, ``anthropic-version``, the key's organization)
    and the instance's custom headers are the gateway's: a forwarded client header never
    replaces one of them, whatever its case. Only client headers the instance allow-lists
    are forwarded (never the client's own credentials: validators refuse to allow-list
    them), and of an ``anthropic-beta`` only the flags the instance admits (providers.betas).
    ``trace_headers`` (W3C ``traceparent``/``tracestate`` of the attempt, when tracing is on)
    replace the client's forwarded ones, whatever their case; without them a forwarded
    ``traceparent`` passes as any allow-listed header. Custom headers come last and win over
    the adapter's.
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
    if trace_headers:
        out = {name: value for name, value in out.items() if name.lower() not in trace_headers}
        out.update(trace_headers)
    if custom:
        out = {name: value for name, value in out.items() if name.lower() not in custom}
        for name, value in provider.custom_headers:
            out[name] = value
    return out


def timeouts(provider: ProviderSnapshot, *, deadline: float | None = None) -> tuple[float, float]:
    """(connect, read) seconds for one call to ``provider``; ``deadline`` (seconds left) caps
    both."""
    if deadline is None:
        return provider.connect_timeout, provider.timeout
    return (
        max(0.001, min(provider.connect_timeout, deadline)),
        max(0.001, min(provider.timeout, deadline)),
    )


async def send(
    provider: ProviderSnapshot,
    request: UpstreamRequest,
    *,
    client_headers: Mapping[str, str] | None = None,
    stream: bool = False,
    deadline: float | None = None,
    trace_headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send ``request`` to ``provider``; the caller must close the response (``aclose``).

    With ``stream`` the body is not read: the caller relays it chunk by chunk.
    ``trace_headers``: see :func:`instance_headers`.
    In-process adapters (``mock``) answer here without a network round trip, after the same
    header handling, so tests of the seam cover them too.
    """
    if request.authorize is not None:
        try:
            request.headers.update(await request.authorize())
        except CredentialError as exc:
            # As the upstream would answer a refused credential: the key is at fault.
            logger.warning("provider %s: key credential unusable (%s)", provider.name, exc)
            error = {"error": {"code": 401, "message": str(exc), "status": "UNAUTHENTICATED"}}
            return httpx.Response(401, json=error)
    headers = instance_headers(provider, request.headers, client_headers, trace_headers)
    adapter = get_adapter(provider.provider_type)
    if adapter.in_process:
        request.headers = headers
        response: httpx.Response = await adapter.respond(request)  # type: ignore[attr-defined]
        if not stream:
            await response.aread()
        return response
    connect, read = timeouts(provider, deadline=deadline)
    return await transport.request(
        request.method,
        request.url,
        params=request.params,
        headers=headers,
        body=request.body or None,
        connect=connect,
        read=read,
        stream=stream,
    )


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
