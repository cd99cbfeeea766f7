"""bench/cluster.py's load balancer: the nginx configuration it generates is valid and does
what the README's "Scale-out" section says (round robin with keepalive; a refused connect is
retried on another gateway, a POST that reached one is not), and its access log is read back
into the kill accounting.

The nginx tests run the real nginx from Debian against two tiny HTTP servers on loopback
(skipped when nginx is missing, failed under CI). Nothing here is timed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, missing_service

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from cluster_lb import Entry, kill_account, lb_config, parse_log

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.fixture
def nginx() -> str:
    if NGINX is None:
        missing_service("nginx (apt-get install nginx-light)")
    assert NGINX is not None
    return NGINX


class Backend(BaseHTTPRequestHandler):
    """Answers every POST 200 with a request id, like a gateway; or drops the connection
    without answering when the server's ``drop`` is set (a process dying mid-request)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append(body)  # type: ignore[attr-defined]
        if self.server.drop:  # type: ignore[attr-defined]
            self.close_connection = True
            self.connection.shutdown(2)
            return
        n = len(self.server.posts)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-request-id", f"req-{self.server.server_port}-{n}")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[list[ThreadingHTTPServer]]:
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
        server.posts = []  # type: ignore[attr-defined]
        server.drop = False  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def start_nginx(nginx: str, tmp: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    port, one_port = free_port(), free_port()
    conf = tmp / "lb.conf"
    conf.write_text(lb_config(tmp=tmp, port=port, one_port=one_port, backends=ports))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"])
    for _ in range(600):  # a connect, not a request: the access log holds only the test's
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"nginx exited: {(tmp / 'lb-error.log').read_text()}")
            threading.Event().wait(0.05)
    return proc, port


def stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGQUIT)  # graceful: it writes its buffered access log out
    proc.wait(timeout=30)


def posts_through(nginx: str, tmp: Path, ports: list[int], n: int) -> tuple[list[int], list[Entry]]:
    """``n`` chat POSTs through a balancer over ``ports``: their statuses, then its access log's
    entries (read after a graceful stop, which writes the log out)."""
    proc, port = start_nginx(nginx, tmp, ports)
    try:
        statuses = [
            httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=b"{}").status_code
            for _ in range(n)
        ]
    finally:
        stop_nginx(proc)
    return statuses, parse_log((tmp / "lb-access.log").read_text().splitlines())


def test_generated_config_passes_nginx_t(nginx: str, tmp_path: Path) -> None:
    conf = tmp_path / "lb.conf"
    conf.write_text(
        lb_config(tmp=tmp_path, port=free_port(), one_port=free_port(), backends=[1, 2, 3])
    )
    out = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr


def test_config_refuses_no_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one backend"):
        lb_config(tmp=tmp_path, port=1, one_port=2, backends=[])


def test_round_robin_and_refused_connect_retried(
    nginx: str, tmp_path: Path, backends: list[ThreadingHTTPServer]
) -> None:
    dead = free_port()  # nothing listens: connection refused
    live = [s.server_port for s in backends]
    statuses, entries = posts_through(nginx, tmp_path, [live[0], dead, live[1]], 6)
    assert statuses == [200] * 6
    assert len(backends[0].posts) > 0 and len(backends[1].posts) > 0  # type: ignore[attr-defined]
    assert len(entries) == 6
    retried = [e for e in entries if len(e.backends) > 1]
    assert retried, "the refused connect was not retried on another backend"
    assert all(e.backends[0] == f"127.0.0.1:{dead}" for e in retried)
    assert all(e.request_id.startswith("req-") for e in entries)


def test_post_that_reached_a_backend_is_not_retried(
    nginx: str, tmp_path: Path, backends: list[ThreadingHTTPServer]
) -> None:
    backends[0].drop = True  # type: ignore[attr-defined]
    statuses, entries = posts_through(nginx, tmp_path, [s.server_port for s in backends], 4)
    # The dropping backend got the POST and never answered: nginx answers 502 rather than send
    # it to the other one (it may have been billed).
    assert 502 in statuses
    failed = [e for e in entries if e.status == 502]
    assert failed and all(len(e.backends) == 1 for e in failed)
    assert all(e.request_id == "-" for e in failed)


def test_kill_account_reads_the_log() -> None:
    # Lines as nginx writes them with LOG_FORMAT; the backend on :2 was killed at t=100.0.
    log = [
        "99.500 200 0.010 r1 127.0.0.1:2|200",  # answered before the kill
        "100.020 502 0.050 - 127.0.0.1:2|502",  # in flight at the kill
        "100.030 502 0.010 - 127.0.0.1:2|502",  # handed to it just after the call
        "100.200 200 0.005 r2 127.0.0.1:2, 127.0.0.1:3|502, 200",  # refused, then retried
        "100.300 200 0.004 r3 127.0.0.1:3|200",
        "100.400 504 0.004 - 127.0.0.1:3|504",  # a live backend's own failure
        "101.000 499 0.020 - 127.0.0.1:3|-",  # the client left first
        "not a log line",
    ]
    account = kill_account(parse_log(log), "127.0.0.1:2", 100.0)
    assert account.requests == 7
    assert account.answered_2xx == 3
    assert account.client_gone == 1
    assert account.failed == 3
    assert account.failed_on_dead == 2
    assert account.retried_to_live == 1
    assert account.first_failure_ms == pytest.approx(20.0)
    assert account.last_failure_ms == pytest.approx(30.0)
