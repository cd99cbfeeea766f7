"""bench/floor.py and the bench table's floor of shared state.

The floor with ``--redis`` is the bench's reference for what one Redis round trip per request
costs on top of plain forwarding: if it stopped making the round trip, the table would credit
the round trip with nothing and every ratio read against it would be wrong. So it is run here
as the bench runs it (a real uvicorn process, a real upstream on loopback, a real Redis) and
the count its script keeps is read back. The table's rows are checked on figures made up
for the purpose: the state column beside the floor in production mode, "-" without it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.conftest import free_port
from tests.fakes.upstream import FakeUpstream

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from report import rows, table  # noqa: E402


def start_floor(port: int, upstream: FakeUpstream, *extra: str) -> subprocess.Popen[bytes]:
    env = {"FLOOR_UPSTREAM": f"{upstream.url}/v1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "floor.py"), "--port", str(port), "--workers", "1", *extra],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(
                    proc.stderr.read().decode() if proc.stderr else "exited"
                ) from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the floor did not start listening")


def chat(port: int) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "bench-chat", "messages": [{"role": "user", "content": "Hi"}]},
        timeout=10,
    )


def test_state_floor_counts_every_request_in_redis(
    redis_url: str, fake_upstream: FakeUpstream
) -> None:
    port = free_port()
    proc = start_floor(port, fake_upstream, "--redis", redis_url)
    try:
        answers = [chat(port) for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].json()["object"] == "chat.completion"
    # Forwarded, not answered by the floor itself: the upstream saw all five.
    assert len(fake_upstream.requests(path_contains="/chat/completions")) == 5
    assert int(redis.Redis.from_url(redis_url).get("floor:requests") or 0) == 5


def test_plain_floor_never_touches_redis(redis_url: str, fake_upstream: FakeUpstream) -> None:
    port = free_port()
    proc = start_floor(port, fake_upstream)
    try:
        assert chat(port).json()["object"] == "chat.completion"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert len(fake_upstream.requests(path_contains="/chat/completions")) == 1
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def _level(p50: float, p99: float, rps: float, cpu: float, errors: int = 0) -> dict[str, float]:
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "errors": errors, "cpu_ms_per_request": cpu}


def _mode(with_state: bool) -> dict[str, Any]:
    """A mode's results, figures chosen so each ratio is easy to read off."""
    mode: dict[str, Any] = {
        "describe": "test",
        "direct": {str(c): _level(0.1, 0.2, 100_000, 0.0) for c in (1, 16, 256)},
        "floor": {str(c): _level(0.3, 0.6, 10_000, 0.1) for c in (1, 16, 256)},
        "gateway": {str(c): _level(0.9, 1.4, 4_000, 0.25) for c in (1, 16, 256)},
        "ttft": {"direct": 0.2, "floor": 0.6, "gateway": 1.2},
        "long_stream": {
            "chunks": 500,
            "first_chunk_ms": 1.0,
            "last_chunk_ms": 1000.0,
            "distinct_arrival_times": 500,
        },
        "translated": {"chat": 0.9, "messages": 1.0, "responses": 1.0},
        "body": {
            **{f"{n}_1k": 0.3 for n in ("direct", "floor", "gateway")},
            **{f"{n}_1m": 1.0 for n in ("direct", "floor", "gateway")},
        },
        "rss": {"before_mb": 110, "after_mb": 110, "growth_pct": 0.0, "requests": 1000},
    }
    mode["rss"]["floor_mb"] = 45
    if with_state:
        mode["state"] = {str(c): _level(0.5, 1.0, 6_000, 0.15, errors=3) for c in (1, 16, 256)}
        mode["ttft"]["state"] = 0.8
        mode["rss"]["state_mb"] = 50
    return mode


def _by_measure(mode: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    return {row[0].split(" (")[0]: row for row in rows(mode)}


def test_state_column_reads_each_figure_against_the_floor() -> None:
    got = _by_measure(_mode(with_state=True))
    # (measure, direct, floor, floor + Redis round trip, gateway, gateway / floor, target)
    assert got["c=1 p50"][3] == "0.50 ms (+0.40, 2.00x)"  # overhead +0.40 against +0.20
    assert got["c=1 p99"][3] == "1.00 ms (+0.80, 2.00x)"
    assert got["c=16 throughput"][3] == "6,000/s (0.60x)"
    assert got["c=16 errors"][3] == "3"
    assert got["stream TTFT p50"][3] == "0.80 ms (+0.60, 1.50x)"
    assert got["worker CPU per request, c=16"][3] == "0.15 ms (1.50x)"
    assert got["RSS per worker, max"][3] == "50 MB"
    # The gateway's ratio stays against the floor, not against the state floor.
    assert got["c=1 p50"][5] == "4.00x"
    assert got["1 MB body minus 1 KB body, c=1 p50"][3] == "-"


def test_without_state_the_column_is_empty() -> None:
    got = rows(_mode(with_state=False))
    assert {row[3] for row in got} == {"-"}
    lines = [ln for ln in table({"modes": {"embedded": _mode(False)}}).split("\n") if ln[:1] == "|"]
    # The header, its rule and every row have as many cells as a row has fields.
    assert {ln.count("|") for ln in lines} == {len(got[0]) + 1}
    assert len(lines) == len(got) + 2
