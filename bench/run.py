"""End-to-end load benchmark of the gateway: ``make bench`` (or ``python bench/run.py``).

It starts a fixed-response upstream (nginx when installed, else bench/upstream.py), a paced
streaming upstream (bench/upstream.py), migrates a throwaway database, imports a benchmark
configuration, starts ``manage.py serve --workers N`` and loads it with ``wrk``. It prints one
table (direct vs gateway, overhead, RPS, streaming TTFT, RSS, usage drain) and writes the same
figures as JSON under bench/results/ with a description of the machine.

Ratios to the direct path measured in the same run are the headline: absolute times vary
between machines.

What it runs against, and what it leaves behind:

- no ``DATABASE_URL``: SQLite in a temporary directory, and no Redis (the embedded default);
- ``DATABASE_URL=postgres://...``: the named database is never touched; a throwaway database
  ``<name>_bench_<hex>`` is created beside it on the same server and dropped at the end;
- ``REDIS_URL``: that Redis database must be empty (the bench refuses to share one with a
  gateway: its usage events would be drained into that gateway's records); it is emptied
  again at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
VKEY = "sk-gw-bench-" + "0" * 32

CHAT = json.dumps({"model": "bench-chat", "messages": [{"role": "user", "content": "Hi"}]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def machine() -> dict[str, Any]:
    cpu = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --- upstreams ---------------------------------------------------------------------------

NGINX_CONF = """
worker_processes 1;
daemon off;
error_log {tmp}/nginx-error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp};
  proxy_temp_path {tmp};
  fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp};
  scgi_temp_path {tmp};
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      default_type application/json;
      return 200 '{body}';
    }}
  }}
}}
"""


def start_fixed_upstream(tmp: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx:
        sys.path.insert(0, str(Path(__file__).parent))
        from upstream import BODY  # type: ignore[import-not-found]

        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY.decode()))
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
        wait_port(port)
        return proc, port, "nginx"
    proc = subprocess.Popen([PY, str(Path(__file__).parent / "upstream.py"), "--port", str(port)])
    wait_port(port)
    return proc, port, "python-aiohttp"


def start_stream_upstream() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([PY, str(Path(__file__).parent / "upstream.py"), "--port", str(port)])
    wait_port(port)
    return proc, port


# --- gateway -----------------------------------------------------------------------------


def gateway_env(tmp: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + os.urandom(16).hex(),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "GATEWAY_STATE_DIR": str(tmp / "state"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    (tmp / "state").mkdir(exist_ok=True)
    return env


@contextmanager
def throwaway_database(env: dict[str, str]) -> Iterator[None]:
    """Point ``env["DATABASE_URL"]`` at a fresh PostgreSQL database for the run, then drop it.

    The database the URL names is never written to: it may be a real gateway's. The new one
    is created through the server's ``postgres`` maintenance database, so the named one need
    not exist (a fresh machine)."""
    url = urlsplit(env["DATABASE_URL"])
    if url.scheme not in ("postgres", "postgresql", "pgsql"):
        yield  # SQLite: already a file in the run's temporary directory
        return
    import psycopg

    name = f"{url.path.lstrip('/') or 'gateway'}_bench_{os.urandom(4).hex()}"
    admin = urlunsplit((url.scheme, url.netloc, "/postgres", url.query, ""))
    admin = admin.replace("postgres://", "postgresql://", 1).replace("pgsql://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = urlunsplit((url.scheme, url.netloc, "/" + name, url.query, ""))
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def dedicated_redis(env: dict[str, str]) -> Iterator[None]:
    """Check that ``REDIS_URL``'s database is empty, and empty it again after the run.

    The bench's gateway writes its configuration version, routing state and usage stream
    there under the gateway's usual names: in a database a real gateway uses, its worker would
    drain the bench's events into its own records."""
    if not env.get("REDIS_URL"):
        yield
        return
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    held = client.dbsize()
    if held:
        sys.exit(
            f"REDIS_URL points at a Redis database that holds {held} keys; the bench needs an "
            "empty one of its own (e.g. redis://127.0.0.1:6379/14)"
        )
    try:
        yield
    finally:
        client.flushdb()  # it was empty before the bench: everything in it is the bench's
        client.close()


def bench_config(fixed_port: int, stream_port: int, extra_aliases: int) -> str:
    lines = [
        "providers:",
        "  - name: bench-fixed",
        "    type: openai",
        f"    base_url: http://127.0.0.1:{fixed_port}/v1",
        "    custom_headers: {X-Environment: bench, X-Cost-Center: perf}",
        "    keys:",
        "      - {name: k1, api_key: sk-upstream-bench-1234567890, primary: true}",
        "  - name: bench-stream",
        "    type: openai",
        f"    base_url: http://127.0.0.1:{stream_port}/v1",
        "    keys:",
        "      - {name: k1, api_key: sk-upstream-bench-1234567890, primary: true}",
    ]
    for i in range(extra_aliases and 1000):
        lines += [
            f"  - name: filler-{i}",
            "    type: openai_compatible",
            f"    base_url: http://127.0.0.1:{fixed_port}/v{i}",
            '    custom_headers: {X-Filler: "on"}',
            "    keys:",
            f"      - {{name: k, api_key: sk-filler-{i}, primary: true}}",
        ]
    lines += [
        "mappings:",
        "  - {alias: bench-chat, provider: bench-fixed, model: gpt-4o-mini, priority: 1,"
        " price: {input_per_million: 0.15, output_per_million: 0.6}}",
        "  - {alias: bench-stream, provider: bench-stream, model: gpt-4o-mini, priority: 1}",
    ]
    for i in range(extra_aliases):
        lines.append(f"  - {{alias: filler-alias-{i}, provider: filler-{i % 1000}, model: m{i}}}")
    lines += ["virtual_keys:", f"  - {{name: bench, key: {VKEY}}}"]
    return "\n".join(lines) + "\n"


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def start_gateway(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            PY,
            str(ROOT / "manage.py"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(env["GATEWAY_STATE_DIR"]) / "serve.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    wait_port(port)
    return proc, port


def worker_pids(root_pid: int) -> list[int]:
    """The serve process's children (uvicorn workers), or itself with one worker."""
    children: list[int] = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with suppress(OSError):
            text = status.read_text()
            ppid = int(re.search(r"PPid:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
            name = re.search(r"Name:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
            cmdline = (status.parent / "cmdline").read_bytes()
            # Not multiprocessing's resource tracker, which is a child too.
            if ppid == root_pid and name.startswith("python") and b"spawn_main" in cmdline:
                children.append(int(status.parent.name))
    return children or [root_pid]


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


# --- load --------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "POST"
wrk.body   = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, lua: Path, connections: int, duration: float) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
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


def ttft(port: int, direct: bool, runs: int) -> list[float]:
    body = {
        "model": "bench-stream",
        "stream": True,
        "bench_chunks": 5,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    path = "/v1/chat/completions"
    headers = "" if direct else f"Authorization: Bearer {VKEY}\r\n"

    async def go() -> list[float]:
        out = []
        for _ in range(runs):
            first, _ = await _first_byte(port, path, json.dumps(body).encode(), headers)
            out.append(first * 1000)
        return out

    return asyncio.run(go())


def long_stream(port: int) -> dict[str, float]:
    """A 500-chunk stream paced 2 ms apart: relayed chunk by chunk, not buffered whole."""
    body = {
        "model": "bench-stream",
        "stream": True,
        "bench_chunks": 500,
        "bench_delay": 0.002,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    first, arrivals = asyncio.run(
        _first_byte(
            port,
            "/v1/chat/completions",
            json.dumps(body).encode(),
            f"Authorization: Bearer {VKEY}\r\n",
        )
    )
    distinct = len(set(round(a, 4) for a in arrivals))
    return {
        "chunks": len(arrivals),
        "first_chunk_ms": first * 1000,
        "last_chunk_ms": (arrivals[-1] if arrivals else float("nan")) * 1000,
        "distinct_arrival_times": distinct,
    }


def usage_drain(env: dict[str, str]) -> dict[str, float] | None:
    """Drain the usage stream the load produced into the database; records per second."""
    if not env.get("REDIS_URL"):
        return None
    code = (
        "import time\n"
        "from gateway.usage.recorder import usage_drain\n"
        "t=time.perf_counter(); total=0\n"
        "while True:\n"
        "    r=usage_drain(); n=r.as_dict().get('recorded',0)\n"
        "    total+=n\n"
        "    if not n: break\n"
        "el=time.perf_counter()-t\n"
        "from django.conf import settings\n"
        "from providers.redis_conn import sync_redis\n"
        "r=sync_redis(); s=settings.GATEWAY_USAGE_STREAM\n"
        "pending=sum(g['pending'] for g in r.xinfo_groups(s))\n"
        "print(total, el, r.xlen(s), pending)\n"
    )
    out = manage(env, "shell", "-c", code).strip().splitlines()[-1].split()
    records, seconds = int(out[0]), float(out[1])
    return {
        "records": records,
        "seconds": seconds,
        "records_per_s": records / seconds if seconds else 0,
        # The queue after the drain: both must be 0 (nothing left, nothing unacknowledged).
        "stream_length_after": int(out[2]),
        "pending_after": int(out[3]),
    }


# --- report ------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    rows = ["| measure | direct | gateway | overhead / ratio |", "|---|---|---|---|"]
    d, g = results["direct"], results["gateway"]
    for c in ("1", "16", "64"):
        if c not in g:
            continue
        rows.append(
            f"| c={c} latency p50 | {d[c]['p50_ms']:.3f} ms | {g[c]['p50_ms']:.3f} ms | "
            f"+{g[c]['p50_ms'] - d[c]['p50_ms']:.3f} ms |"
        )
        rows.append(
            f"| c={c} latency p99 | {d[c]['p99_ms']:.3f} ms | {g[c]['p99_ms']:.3f} ms | "
            f"+{g[c]['p99_ms'] - d[c]['p99_ms']:.3f} ms |"
        )
        rows.append(
            f"| c={c} requests/s | {d[c]['rps']:,.0f} | {g[c]['rps']:,.0f} "
            f"({int(g[c]['errors'])} errors) | {g[c]['rps'] / d[c]['rps'] * 100:.1f}% of direct |"
        )
    t = results["ttft"]
    rows.append(
        f"| stream TTFT p50 | {t['direct_p50_ms']:.3f} ms | {t['gateway_p50_ms']:.3f} ms | "
        f"+{t['gateway_p50_ms'] - t['direct_p50_ms']:.3f} ms |"
    )
    s = results["long_stream"]
    rows.append(
        f"| 500-chunk stream | - | first {s['first_chunk_ms']:.1f} ms, "
        f"last {s['last_chunk_ms']:.1f} ms"
        f" | {int(s['distinct_arrival_times'])} distinct arrivals of {int(s['chunks'])} chunks |"
    )
    r = results["rss"]
    rows.append(
        f"| RSS per worker (max) | - | {r['warm_mb']:.0f} MB warm, {r['before_mb']:.0f} MB "
        f"-> {r['after_mb']:.0f} MB over a {int(r['requests']):,}-request soak at c=16 | "
        f"{r['growth_pct']:+.1f}% over the soak ({r['total_growth_pct']:+.1f}% since warm) |"
    )
    u = results.get("usage_drain")
    if u:
        rows.append(
            f"| usage drain (1 process) | - | {int(u['records']):,} records in "
            f"{u['seconds']:.1f} s; then {u['stream_length_after']} queued, "
            f"{u['pending_after']} unacknowledged | {u['records_per_s']:,.0f} records/s |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--soak", type=int, default=200_000, help="requests for the RSS check")
    parser.add_argument("--aliases", type=int, default=0, help="extra aliases (route table size)")
    parser.add_argument("--ttft-runs", type=int, default=200)
    args = parser.parse_args()

    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (Debian) or build it from source")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
    }
    procs: list[subprocess.Popen[bytes]] = []
    # Exited after the processes are stopped (the ``finally`` below): database and Redis last.
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmpdir, ExitStack() as resources:
        tmp = Path(tmpdir)
        try:
            fixed, fixed_port, kind = start_fixed_upstream(tmp)
            procs.append(fixed)
            stream, stream_port = start_stream_upstream()
            procs.append(stream)
            env = gateway_env(tmp)
            results["upstream"] = kind
            results["database"] = env["DATABASE_URL"].split(":", 1)[0]
            results["redis"] = bool(env.get("REDIS_URL"))
            resources.enter_context(dedicated_redis(env))
            resources.enter_context(throwaway_database(env))
            manage(env, "migrate", "--noinput")
            cfg = tmp / "bench.yaml"
            cfg.write_text(bench_config(fixed_port, stream_port, args.aliases))
            manage(env, "gateway_config", "import", str(cfg))
            gw, gw_port = start_gateway(env, args.workers)
            procs.append(gw)
            lua = tmp / "chat.lua"
            lua.write_text(WRK_LUA.format(body=CHAT, key=VKEY))
            direct_url = f"http://127.0.0.1:{fixed_port}/v1/chat/completions"
            gw_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
            wrk(gw_url, lua, 4, 2)  # warm up: route table, connection pools
            pids = worker_pids(gw.pid)
            warm = max(rss_mb(p) for p in pids)
            results["direct"], results["gateway"] = {}, {}
            for c in (1, 16, 64):
                print(f"load c={c} ...", file=sys.stderr)
                results["direct"][str(c)] = wrk(direct_url, lua, c, args.duration)
                results["gateway"][str(c)] = wrk(gw_url, lua, c, args.duration)
            print("streaming ...", file=sys.stderr)
            d = ttft(stream_port, True, args.ttft_runs)
            g = ttft(gw_port, False, args.ttft_runs)
            results["ttft"] = {
                "direct_p50_ms": statistics.median(d),
                "gateway_p50_ms": statistics.median(g),
            }
            results["long_stream"] = long_stream(gw_port)
            # Memory: the soak starts after every load level has run (pools, buffers and
            # caches at their working size), so growth over it is what keeps growing.
            before = max(rss_mb(p) for p in pids)
            rps = max(results["gateway"]["16"]["rps"], 1.0)
            seconds = args.soak / rps
            print(f"soak {args.soak:,} requests (~{seconds:.0f} s) ...", file=sys.stderr)
            soaked = wrk(gw_url, lua, 16, seconds)
            while soaked["requests"] < args.soak:  # wrk runs for a time, not a count
                more = wrk(gw_url, lua, 16, (args.soak - soaked["requests"]) / rps + 1)
                soaked["requests"] += more["requests"]
                soaked["errors"] += more["errors"]
            after = max(rss_mb(p) for p in pids)
            results["rss"] = {
                "warm_mb": warm,
                "before_mb": before,
                "after_mb": after,
                "growth_pct": (after - before) / before * 100,
                "total_growth_pct": (after - warm) / warm * 100,
                "requests": soaked["requests"],
                "soak_errors": soaked["errors"],
                "workers": len(pids),
            }
            print("usage drain ...", file=sys.stderr)
            results["usage_drain"] = usage_drain(env)
        finally:
            for proc in reversed(procs):
                with suppress(ProcessLookupError):
                    if proc.args[2:3] == ["serve"]:  # type: ignore[index]
                        os.killpg(proc.pid, signal.SIGTERM)  # uvicorn and its workers
                    else:
                        proc.terminate()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=20)
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(
        f"\n{results['date']}, {results['machine']['cores']} cores ({results['machine']['cpu']}), "
        f"upstream {results['upstream']}, database {results['database']}, "
        f"redis {'yes' if results['redis'] else 'no'}, serve --workers {args.workers}\n"
    )
    print(table(results))
    print(f"\nJSON: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
