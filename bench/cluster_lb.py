"""The load balancer of bench/cluster.py: nginx's configuration in front of N gateway processes,
and the reading of its access log (which backend served each request, and what it answered).

Kept apart from the orchestration so that tests can check the generated configuration
(``nginx -t``) and the log accounting without starting anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: One access-log line per request: end time (s), status, request time (s), the gateway's
#: request id (its usage record's), every backend tried (``host:port, host:port`` when nginx
#: moved on) and each one's status.
LOG_FORMAT = (
    "$msec $status $request_time $upstream_http_x_request_id $upstream_addr|$upstream_status"
)

LOCATION = """
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_read_timeout 300s;
      # Retry only what never reached a gateway: a refused or failed connect. A POST that was
      # sent is not retried (non_idempotent stays off): the gateway may already have called
      # the upstream, and an LLM call made twice is billed twice.
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries {tries};
      add_header X-Upstream-Addr $upstream_addr always;
    }}
"""

CONFIG = """
worker_processes 1;
error_log {tmp}/lb-error.log warn;
pid {tmp}/lb.pid;
events {{ worker_connections 4096; }}
http {{
  log_format lb '{log_format}';
  access_log {tmp}/lb-access.log lb buffer=64k flush=1s;
  client_body_temp_path {tmp}/lb-body;
  proxy_temp_path {tmp}/lb-proxy;
  fastcgi_temp_path {tmp}/lb-fastcgi;
  uwsgi_temp_path {tmp}/lb-uwsgi;
  scgi_temp_path {tmp}/lb-scgi;
  client_max_body_size 16m;
  keepalive_requests 1000000;
  upstream gateway_all {{
{servers}
    keepalive 64;
  }}
  upstream gateway_one {{
    server 127.0.0.1:{first};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
{all_location}
  }}
  server {{
    listen 127.0.0.1:{one_port};
{one_location}
  }}
}}
"""


def lb_config(*, tmp: Path, port: int, one_port: int, backends: list[int]) -> str:
    """nginx's configuration: round robin with keepalive over ``backends`` on ``port``, and the
    first backend alone behind ``one_port`` (what nginx itself costs). A backend that refuses
    a connection is out for 5 s (``max_fails=1``); pid, logs and temp files in ``tmp``."""
    if not backends:
        raise ValueError("the load balancer needs at least one backend port")
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in backends)
    return CONFIG.format(
        tmp=tmp,
        log_format=LOG_FORMAT,
        servers=servers,
        first=backends[0],
        port=port,
        one_port=one_port,
        all_location=LOCATION.format(upstream="gateway_all", tries=len(backends)),
        one_location=LOCATION.format(upstream="gateway_one", tries=1),
    )


@dataclass(frozen=True)
class Entry:
    """One request as nginx logged it."""

    end: float
    status: int
    seconds: float
    request_id: str  # "-" when no gateway answered
    backends: tuple[str, ...]  # every backend tried, in order ("-" when none was)
    statuses: tuple[str, ...]  # each one's answer ("502", "-" when nothing came back)

    @property
    def start(self) -> float:
        return self.end - self.seconds


def parse_log(lines: Iterable[str]) -> list[Entry]:
    """The entries of an access log written with ``LOG_FORMAT`` (other lines are skipped)."""
    out = []
    for line in lines:
        parts = line.strip().split(" ", 4)
        if len(parts) != 5 or "|" not in parts[4]:
            continue
        addrs, statuses = parts[4].split("|", 1)
        out.append(
            Entry(
                end=float(parts[0]),
                status=int(parts[1]),
                seconds=float(parts[2]),
                request_id=parts[3],
                backends=tuple(a.strip() for a in addrs.split(",")),
                statuses=tuple(s.strip() for s in statuses.split(",")),
            )
        )
    return out


@dataclass(frozen=True)
class KillAccount:
    """What a backend's SIGKILL did to the requests around it.

    A request that failed on the killed backend was handed to it and never answered: it was in
    flight there when the process died (``os.kill`` returns before the process is scheduled to
    die and its sockets close, so some of them arrived just after the call)."""

    requests: int
    answered_2xx: int
    client_gone: int  # 499: the client closed first (wrk stops with requests in flight)
    failed: int  # any other non-2xx answer, from nginx or a gateway
    failed_on_dead: int  # the error came from the killed backend
    retried_to_live: int  # the killed backend refused the connection; another one answered
    first_failure_ms: float  # failures on the killed backend, their ends after the kill call
    last_failure_ms: float


def kill_account(entries: Iterable[Entry], dead: str, killed_at: float) -> KillAccount:
    """Account for the requests of a run in which backend ``dead`` (``host:port``) was killed at
    ``killed_at`` (wall clock, as nginx's ``$msec``)."""
    requests = answered = gone = failed = failed_dead = retried = 0
    ends: list[float] = []
    for e in entries:
        requests += 1
        if 200 <= e.status < 300:
            answered += 1
            if len(e.backends) > 1 and e.backends[0] == dead and e.backends[-1] != dead:
                retried += 1
        elif e.status == 499:
            gone += 1
        else:
            failed += 1
            if e.backends[-1] == dead:
                failed_dead += 1
                ends.append((e.end - killed_at) * 1000)
    return KillAccount(
        requests,
        answered,
        gone,
        failed,
        failed_dead,
        retried,
        min(ends, default=0.0),
        max(ends, default=0.0),
    )
