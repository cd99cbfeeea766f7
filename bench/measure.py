"""Load and process measurements for bench/run.py: wrk runs, streams timed by hand, and the
workers' CPU time and memory from ``/proc``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

VKEY = "sk-gw-bench-" + "0" * 32
TICK_S = 1 / os.sysconf("SC_CLK_TCK")

WRK_LUA = """
wrk.method = "POST"
wrk.body   = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["x-api-key"] = "{key}"
wrk.headers["anthropic-version"] = "2023-06-01"
"""


def chat_body(content: str = "Hi") -> str:
    return json.dumps({"model": "bench-chat", "messages": [{"role": "user", "content": content}]})


#: One request body per measured path; the ``path`` is appended to the server's address.
BODIES: dict[str, tuple[str, str]] = {
    "chat": ("/v1/chat/completions", chat_body()),
    "chat_1k": ("/v1/chat/completions", chat_body("x" * 1024)),
    "chat_1m": ("/v1/chat/completions", chat_body("x" * 1024 * 1024)),
    "messages": (
        "/v1/messages",
        json.dumps(
            {
                "model": "bench-chat",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Hi"}],
            }
        ),
    ),
    "responses": (
        "/v1/responses",
        json.dumps({"model": "bench-chat-only", "input": "Hi", "store": False}),
    ),
}


def write_lua(tmp: Path) -> dict[str, Path]:
    out = {}
    for name, (_, body) in BODIES.items():
        out[name] = tmp / f"{name}.lua"
        out[name].write_text(WRK_LUA.format(body=body, key=VKEY))
    return out


def worker_pids(root_pid: int) -> list[int]:
    """The uvicorn workers of a server started as ``root_pid``, or itself with one worker."""
    children: list[int] = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with suppress(OSError, AttributeError):
            text = status.read_text()
            ppid = int(re.search(r"PPid:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
            cmdline = (status.parent / "cmdline").read_bytes()
            # Not multiprocessing's resource tracker, which is a child too.
            if ppid == root_pid and b"spawn_main" in cmdline:
                children.append(int(status.parent.name))
    return children or [root_pid]


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total * TICK_S


def group_pids(leader: int) -> list[int]:
    """The processes of the process group ``leader`` started (a Celery worker and its pool)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == leader:  # pgrp
                pids.append(int(stat.parent.name))
    return pids


def redis_cpu_s(url: str) -> float:
    """User + system CPU seconds the Redis server at ``url`` has used so far (``INFO cpu``)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextmanager
def probed(
    base_url: str, every: float = 1.0, scrape_every: float = 5.0
) -> Iterator[dict[str, int]]:
    """While active, probe ``/health/ready`` every ``every`` seconds and scrape ``/metrics``
    every ``scrape_every``, each on a new connection (a load balancer and Prometheus, as in
    production): a worker's memory is then that of one that serves them too. Yields the
    counts of probes sent and of those not answered 200."""
    counts = {"sent": 0, "failed": 0}
    stop = threading.Event()

    def run() -> None:
        last_scrape = 0.0
        while not stop.wait(every):
            paths = ["/health/ready"]
            if time.monotonic() - last_scrape >= scrape_every:
                paths.append("/metrics")
                last_scrape = time.monotonic()
            for path in paths:
                counts["sent"] += 1
                try:
                    with urllib.request.urlopen(base_url + path, timeout=10) as answer:
                        answer.read()
                        ok = answer.status == 200
                except OSError:
                    ok = False
                counts["failed"] += not ok

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str, lua: Path, connections: int, duration: float, pids: list[int] | None = None
) -> dict[str, float]:
    """One wrk run; with ``pids``, also the CPU time those processes spent per request."""
    threads = min(2, connections)
    before = cpu_s(pids) if pids else 0.0
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        result[f"p{pct}_ms"] = _ms(m.group(1), m.group(2)) if m else float("nan")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    result["errors"] = errors
    if pids and result["requests"]:
        result["cpu_ms_per_request"] = (cpu_s(pids) - before) / result["requests"] * 1000
    return result


async def _first_byte(port: int, path: str, body: bytes, headers: str) -> tuple[float, list[float]]:
    """Seconds to the first SSE data line, and every chunk's arrival time from the start."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    t0 = time.perf_counter()
    writer.write(request)
    await writer.drain()
    arrivals: list[float] = []
    first = None
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        now = time.perf_counter() - t0
        buf += data
        n = buf.count(b"data: ")
        if n and first is None:
            first = now
        arrivals.extend([now] * (n - len(arrivals)))
    writer.close()
    return (first if first is not None else float("nan")), arrivals


def _stream_body(chunks: int, delay: float = 0.0) -> bytes:
    body = {
        "model": "bench-stream",
        "stream": True,
        "bench_chunks": chunks,
        "bench_delay": delay,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    return json.dumps(body).encode()


def ttft(ports: dict[str, int], runs: int) -> dict[str, list[float]]:
    """Time to the first streamed chunk (ms) on each server, the servers taken in turn."""
    headers = f"Authorization: Bearer {VKEY}\r\n"
    body = _stream_body(5)

    async def go() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {name: [] for name in ports}
        for _ in range(runs):
            for name, port in ports.items():
                first, _ = await _first_byte(port, "/v1/chat/completions", body, headers)
                out[name].append(first * 1000)
        return out

    return asyncio.run(go())


def long_stream(port: int) -> dict[str, float]:
    """A 500-chunk stream paced 2 ms apart: relayed chunk by chunk, not buffered whole."""
    first, arrivals = asyncio.run(
        _first_byte(
            port,
            "/v1/chat/completions",
            _stream_body(500, 0.002),
            f"Authorization: Bearer {VKEY}\r\n",
        )
    )
    return {
        "chunks": len(arrivals),
        "first_chunk_ms": first * 1000,
        "last_chunk_ms": (arrivals[-1] if arrivals else float("nan")) * 1000,
        "distinct_arrival_times": len(set(round(a, 4) for a in arrivals)),
    }


def wrk_rounds(
    runs: dict[str, tuple[str, Path]],
    connections: int,
    duration: float,
    rounds: int,
    pids: dict[str, list[int]] | None = None,
) -> dict[str, dict[str, float]]:
    """wrk on every target in turn, ``rounds`` times, ``duration`` seconds in all per target.

    On a shared machine the load from elsewhere moves from one second to the next: slices
    taken in turn put each target under the same conditions, and the median of the slices
    drops a slice that one burst spoiled. Latencies and rates are medians of the rounds;
    requests, errors and CPU time are summed (CPU per request over all rounds).
    """
    slices: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (url, lua) in runs.items():
            slices[name].append(
                wrk(url, lua, connections, duration / rounds, (pids or {}).get(name))
            )
    out: dict[str, dict[str, float]] = {}
    for name, got in slices.items():
        merged = {k: statistics.median(s[k] for s in got) for k in ("p50_ms", "p99_ms", "rps")}
        merged["requests"] = sum(s["requests"] for s in got)
        merged["errors"] = sum(s["errors"] for s in got)
        if all("cpu_ms_per_request" in s for s in got) and merged["requests"]:
            cpu = sum(s["cpu_ms_per_request"] * s["requests"] for s in got)
            merged["cpu_ms_per_request"] = cpu / merged["requests"]
        out[name] = merged
    return out
