"""Connection limits for ``manage.py serve``: uvicorn's httptools protocol with a header size
cap and header/body read timeouts.

uvicorn's httptools protocol reads headers of any size for as long as the client likes: five
connections each sending an unterminated 20 MB header grew the process by 185 MB, and a
connection dribbling one header byte at a time stayed open forever (slow loris). This subclass
adds three bounds per connection, none of which touches a response being written:

* the bytes of one request's head (request line and headers): past ``max_header_bytes`` the
  client gets ``431 Request Header Fields Too Large`` and the connection is closed;
* the time from a request's first byte (or the connection's opening) to the end of its
  headers: past ``header_timeout`` the connection is closed;
* the time from the end of the headers to the end of the request body: past ``body_timeout``
  the connection is closed.

The timers stop once the request has been read, so a slow upstream or a long stream is never
cut; idle time between requests is uvicorn's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: What ``serve`` passes to its worker processes (they read their limits from it).
ENV_NAME = "GATEWAY_SERVER_LIMITS"

_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\n"
    b"connection: close\r\n\r\n"
    b"Request header fields too large\n"
)


class HeadTooLarge(Exception):
    """Raised in the parser's callback to stop parsing a request head over the cap."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Per-connection limits (seconds and bytes; 0 turns a limit off)."""

    max_header_bytes: int = 65536
    header_timeout: float = 10.0
    body_timeout: float = 60.0

    def to_env(self) -> str:
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())

    @classmethod
    def from_env(cls, raw: str) -> ServerLimits:
        values = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
        default = cls()
        return cls(
            max_header_bytes=int(values.get("max_header_bytes", default.max_header_bytes)),
            header_timeout=float(values.get("header_timeout", default.header_timeout)),
            body_timeout=float(values.get("body_timeout", default.body_timeout)),
        )


_limits: ServerLimits | None = None


def configure(limits: ServerLimits) -> None:
    """Set this process's limits and hand them to worker processes started after this."""
    global _limits
    _limits = limits
    os.environ[ENV_NAME] = limits.to_env()


def current_limits() -> ServerLimits:
    """The limits ``configure`` set, else those a parent process passed, else the defaults."""
    global _limits
    if _limits is None:
        _limits = ServerLimits.from_env(os.environ.get(ENV_NAME, ""))
    return _limits


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ServerLimits` enforced per connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = current_limits()
        self._reading_head = True
        self._head_bytes = 0
        self._heads_done = 0
        self._head_too_large = False
        self._read_timer: asyncio.TimerHandle | None = None

    # -- timers ------------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        if seconds > 0:
            self._read_timer = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection that was too slow to send its request")
            self.transport.close()

    # -- protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is a slow client too.
        self._arm(self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        counting = self._reading_head and self._limits.max_header_bytes > 0
        heads = self._heads_done
        super().data_received(data)
        if not counting or self.transport.is_closing():
            return
        if heads != self._heads_done:  # a head ended in this chunk: the rest is the next one's
            self._head_bytes = 0
            return
        self._head_bytes += len(data)
        if self._head_bytes > self._limits.max_header_bytes:
            self._reject_head()

    def _reject_head(self) -> None:
        self._disarm()
        self._unset_keepalive_if_required()
        self.logger.warning("request head over %d bytes: 431", self._limits.max_header_bytes)
        if not self.transport.is_closing():
            self.transport.write(_431)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers 400 to any error raised in a parser callback, ours included.
        if self._head_too_large:
            self._reject_head()
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._arm(self._limits.header_timeout)

    def on_headers_complete(self) -> None:
        # A head that arrived whole in one read is measured here (the parser stops on raise).
        # Sized from what the parser kept (the URL and every header, with ": " and CRLF), not
        # counted header by header: a Python call less per header on every request.
        cap = self._limits.max_header_bytes
        if cap and len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > cap:
            self._head_too_large = True
            raise HeadTooLarge
        self._reading_head = False
        self._heads_done += 1
        self._arm(self._limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The request is read: from here on only the response runs, with no read deadline.
        self._disarm()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()
