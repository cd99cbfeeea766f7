"""A loopback HTTP forwarder that counts what a client sends to the gateway.

Put between a CLI and the gateway to count its requests (and their answers' statuses) without
timing anything. Bodies are forwarded whole (the tests that use it expect error answers)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class CountingForwarder:
    """``with CountingForwarder(target) as f: ...`` then ``f.seen``: (method path, status)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.seen: list[tuple[str, int | None]] = []
        forwarder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                index = len(forwarder.seen)
                forwarder.seen.append((f"{self.command} {self.path}", None))
                try:
                    upstream = httpx.request(
                        self.command,
                        forwarder.target + self.path,
                        headers=headers,
                        content=body,
                        timeout=30,
                    )
                except httpx.HTTPError:
                    self.send_error(502)
                    return
                forwarder.seen[index] = (f"{self.command} {self.path}", upstream.status_code)
                self.send_response(upstream.status_code)
                for name, value in upstream.headers.items():
                    if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingForwarder:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
