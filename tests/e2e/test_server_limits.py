"""Server limits of ``manage.py serve``, against a real server process over raw sockets.

Header size cap (431), header and body read timeouts (slow loris), the concurrency cap (503);
and what the limits must not touch: keep-alive between requests, slow upstreams, long streams.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import GatewayServer, World, start_gateway
from tests.fakes.upstream import Behaviour, FakeUpstream, Gate

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0  # the header and body timeouts of the server under test (seconds)
CLOSE_WAIT = 15.0  # how long a test waits for the server to close a connection at most


@pytest.fixture(scope="module")
def limited(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    server = start_gateway(
        tmp_path_factory.mktemp("limits") / "server.log",
        GATEWAY_HEADER_TIMEOUT=str(TIMEOUT),
        GATEWAY_BODY_TIMEOUT=str(TIMEOUT),
        GATEWAY_MAX_HEADER_BYTES="16384",
    )
    yield server
    server.stop()


def connect(server: GatewayServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_WAIT)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def closed_by_server(sock: socket.socket, dribble: bytes = b"") -> bool:
    """Send ``dribble`` a byte at a time (slowly) until the server closes the connection;
    True when it did within ``CLOSE_WAIT``."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + CLOSE_WAIT
    i = 0
    while time.monotonic() < deadline:
        try:
            if i < len(dribble):
                sock.sendall(dribble[i : i + 1])
                i += 1
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def rss_kb(server: GatewayServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_unterminated_20_mb_header_gets_431_and_memory_stays_bounded(
    limited: GatewayServer,
) -> None:
    before = rss_kb(limited)
    for _ in range(5):
        sock = connect(limited)
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 20 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
        sock.close()
        assert sent < 20 * 1024 * 1024, "the server read the whole 20 MB header"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    grown_mb = (rss_kb(limited) - before) / 1024
    assert grown_mb < 20, f"RSS grew by {grown_mb:.0f} MB"


def test_an_oversized_header_in_one_piece_gets_431(limited: GatewayServer) -> None:
    sock = connect(limited)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_slow_loris_connection_is_closed(limited: GatewayServer) -> None:
    sock = connect(limited)
    sock.sendall(b"GET /health/live HTTP/1.1\r\n")
    assert closed_by_server(sock, b"X-Slow: " + b"a" * 1000)
    sock.close()


def test_a_connection_that_sends_nothing_is_closed(limited: GatewayServer) -> None:
    sock = connect(limited)
    assert closed_by_server(sock)
    sock.close()


def test_a_slow_body_is_cut(limited: GatewayServer) -> None:
    sock = connect(limited)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    assert closed_by_server(sock, b"{" * 1000)
    sock.close()


def test_keep_alive_outlives_the_header_timeout(limited: GatewayServer) -> None:
    """Idle time between requests is the keep-alive timeout's, not the header timeout's."""
    sock = connect(limited)
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(2):
        sock.sendall(request)
        answer = b""
        while not answer.endswith(b'"ok"}'):
            chunk = sock.recv(65536)
            assert chunk, f"connection closed; got {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT * 2)
    sock.close()


def test_slow_upstreams_and_long_streams_are_not_cut(
    limited: GatewayServer,
    fake_upstream: FakeUpstream,
    transactional_db: None,
) -> None:
    world = World(server=limited, fake=fake_upstream)
    world.mapping("gpt-4o", world.provider("oa"))
    key = world.vkey()
    world.publish()
    gate = Gate()
    # The upstream holds the answer past both timeouts, then streams for longer than them.
    fake_upstream.behave(Behaviour(gate=gate, chunk_delay=TIMEOUT / 2))
    sock = connect(limited)
    body = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    assert gate.arrived.wait(CLOSE_WAIT)
    time.sleep(TIMEOUT * 2)
    gate.release()
    answer = read_answer(sock)
    sock.close()
    world.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.count(b"data: ") >= 3 and b"data: [DONE]" in answer


def test_the_concurrency_cap_answers_503(django_db_setup: None, tmp_path: Path) -> None:
    server = start_gateway(tmp_path / "server.log", GATEWAY_LIMIT_CONCURRENCY="2")
    try:
        idle = connect(server)  # one connection held open: with this one, two
        sock = connect(server)
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        idle.close()
        sock.close()
    finally:
        server.stop()


def test_serve_refuses_a_negative_limit() -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--header-timeout"):
        call_command("serve", "--header-timeout", "-1")
