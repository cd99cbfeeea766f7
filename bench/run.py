"""End-to-end load benchmark of the gateway against the Python floor: ``make bench``.

It starts a fixed-response upstream (nginx when installed, else bench/upstream.py), a paced
streaming upstream (bench/upstream.py), the floor (bench/floor.py: a raw ASGI app forwarding
with aiohttp on the uvicorn settings and worker count of ``manage.py serve``) and, for each
mode, a throwaway database, the benchmark configuration and ``manage.py serve --workers N``.
Every load level runs direct, floor and gateway back to back, so each gateway figure is read as
a ratio to the floor's from the same minute: absolute times move 5x between machines and from
one minute to the next on a shared one. It prints one markdown table per mode (measure, direct,
floor, gateway, ratio, target) and writes the figures as JSON under bench/results/.

Modes (``--modes``, both by default, production first):

- ``production``: PostgreSQL + Redis + a Celery worker (with beat) draining the usage stream,
  the README's production shape. Needs ``DATABASE_URL=postgres://...`` and ``REDIS_URL``;
  skipped with a note when either is missing.
- ``embedded``: SQLite in a temporary directory, no Redis (usage written in process).

What it leaves behind: with ``DATABASE_URL`` the named database is never touched (a throwaway
``<name>_bench_<hex>`` is created beside it and dropped at the end); ``REDIS_URL``'s database
must be empty (the bench refuses to share one with a gateway, whose worker would drain the
bench's usage into its own records) and is emptied again at the end.

``--quick`` (3 s per load level, a 20,000-request soak, 50 TTFT samples) took 5.4 minutes for
both modes on a loaded 2-core machine; the full run (10 s, 200,000, 200) 9.3 minutes on a quiet
one, most of it the soaks.
``--profile FILE.svg`` records a py-spy flame graph of one gateway worker under c=16 instead
(``make bench-profile``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(Path(__file__).parent))

from measure import (  # noqa: E402
    VKEY,
    cpu_s,
    group_pids,
    long_stream,
    probed,
    redis_cpu_s,
    rss_mb,
    ttft,
    worker_pids,
    write_lua,
    wrk,
    wrk_rounds,
)
from report import table  # noqa: E402


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
  client_max_body_size 16m;
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


def gateway_env(tmp: Path, mode: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    if mode == "embedded":
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    tmp = tmp / mode
    tmp.mkdir(exist_ok=True)
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


def bench_config(
    fixed_port: int,
    stream_port: int,
    extra_aliases: int,
    *,
    providers: tuple[str, ...] = (),
    mappings: tuple[str, ...] = (),
    keys: tuple[str, ...] = (),
    routing: str = "",
) -> str:
    """The bench's configuration file; the keyword arguments add YAML lines (list entries
    already indented) to its sections, for benches that need more than the defaults."""
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
        # Chat completions only: the Responses API is translated to chat for it.
        "  - name: bench-chat-only",
        "    type: openai_compatible",
        f"    base_url: http://127.0.0.1:{fixed_port}/v1",
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
    lines += providers
    lines += [
        "mappings:",
        "  - {alias: bench-chat, provider: bench-fixed, model: gpt-4o-mini, priority: 1,"
        " price: {input_per_million: 0.15, output_per_million: 0.6}}",
        "  - {alias: bench-stream, provider: bench-stream, model: gpt-4o-mini, priority: 1}",
        "  - {alias: bench-chat-only, provider: bench-chat-only, model: gpt-4o-mini, priority: 1}",
    ]
    for i in range(extra_aliases):
        lines.append(f"  - {{alias: filler-alias-{i}, provider: filler-{i % 1000}, model: m{i}}}")
    lines += mappings
    lines += ["virtual_keys:", f"  - {{name: bench, key: {VKEY}}}", *keys]
    if routing:
        lines.append(f"routing: {routing}")
    return "\n".join(lines) + "\n"


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def start_gateway(
    env: dict[str, str], workers: int, log: str = "serve.log"
) -> tuple[subprocess.Popen[bytes], int]:
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
        stderr=open(Path(env["GATEWAY_STATE_DIR"]) / log, "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    wait_port(port)
    return proc, port


def start_floor(
    workers: int, fixed_port: int, stream_port: int, redis_url: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """The floor; with ``redis_url``, the floor of shared state (one Redis round trip per
    request, ``bench/floor.py --redis``)."""
    port = free_port()
    env = dict(os.environ)
    env["FLOOR_UPSTREAM"] = f"http://127.0.0.1:{fixed_port}/v1"
    env["FLOOR_STREAM_UPSTREAM"] = f"http://127.0.0.1:{stream_port}/v1"
    proc = subprocess.Popen(
        [
            PY,
            str(Path(__file__).parent / "floor.py"),
            "--port",
            str(port),
            "--workers",
            str(workers),
            *(("--redis", redis_url) if redis_url else ()),
        ],
        env=env,
        start_new_session=True,
    )
    wait_port(port)
    return proc, port


def start_celery(
    env: dict[str, str], *, beat: bool = True, name: str = "celery", loglevel: str = "WARNING"
) -> subprocess.Popen[bytes]:
    """A Celery worker, with beat (the usage drain every 2 s) unless ``beat`` is false, as the
    README runs them; ``name`` tells several workers on one host apart (node name, log)."""
    state = Path(env["GATEWAY_STATE_DIR"])
    command = [str(Path(PY).parent / "celery"), "-A", "gateway", "worker", "-n", f"{name}@%h"]
    if beat:
        manage(env, "setup_schedules")
        command += [
            "-B",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(state / "beat"),
        ]
    return subprocess.Popen(
        [*command, "--concurrency", "1", "--loglevel", loglevel],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(state / f"{name}.log", "wb"),
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started here; one started in its own session with all its children."""

    def kill(sig: int) -> None:
        with suppress(ProcessLookupError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)  # uvicorn or celery and their workers
            else:
                os.kill(proc.pid, sig)

    kill(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill(signal.SIGKILL)
        proc.wait()


def usage_backlog(env: dict[str, str], wait: float) -> dict[str, float]:
    """Events in the usage stream at the end of the load, and how long the Celery worker took
    to bring the stream (entries not yet acknowledged included) back to zero."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    stream = env.get("GATEWAY_USAGE_STREAM", "gw:usage")

    def left() -> int:
        if not client.exists(stream):
            return 0
        return sum(g["pending"] for g in client.xinfo_groups(stream)) + _unread(client, stream)

    t0 = time.monotonic()
    backlog = left()
    while (n := left()) and time.monotonic() - t0 < wait:
        time.sleep(0.5)
    client.close()
    return {"backlog": backlog, "left": n, "drained": n == 0, "seconds": time.monotonic() - t0}


def _unread(client: Any, stream: str) -> int:
    """Entries no consumer group has read yet (lag), or the whole stream without a group."""
    groups = client.xinfo_groups(stream)
    if not groups:
        return int(client.xlen(stream))
    lags = [g.get("lag") for g in groups]
    return int(max(lag or 0 for lag in lags))


def prepare_mode(stack: ExitStack, mode: str, tmp: Path, config: str) -> dict[str, str]:
    """``mode``'s environment with its throwaway database (migrated, ``config`` imported) and
    checked-empty Redis database; ``stack`` drops and empties them."""
    env = gateway_env(tmp, mode)
    stack.enter_context(dedicated_redis(env))
    stack.enter_context(throwaway_database(env))
    manage(env, "migrate", "--noinput")
    cfg = tmp / mode / "bench.yaml"
    cfg.write_text(config)
    manage(env, "gateway_config", "import", str(cfg))
    return env


def start_mode(
    stack: ExitStack, mode: str, args: argparse.Namespace, up: dict[str, Any], tmp: Path
) -> tuple[dict[str, str], subprocess.Popen[bytes], int, int | None]:
    """``mode``'s throwaway database and Redis, the bench configuration, a Celery worker
    (production) and the gateway: (its environment, process, port, the Celery worker's pid or
    None). ``stack`` stops them all."""
    env = prepare_mode(
        stack, mode, tmp, bench_config(up["fixed_port"], up["stream_port"], args.aliases)
    )
    celery_pid = None
    if mode == "production":
        celery = start_celery(env)
        stack.callback(stop, celery)
        celery_pid = celery.pid
    gw, gw_port = start_gateway(env, args.workers)
    stack.callback(stop, gw)
    return env, gw, gw_port, celery_pid


def run_mode(
    mode: str, args: argparse.Namespace, tmp: Path, upstream: dict[str, Any]
) -> dict[str, Any]:
    """Start this mode's gateway and measure direct, floor and gateway back to back."""
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        env, gw, gw_port, celery_pid = start_mode(stack, mode, args, upstream, tmp)
        if mode == "production":
            # Its key lives in the mode's Redis database, emptied with it.
            state, state_port = start_floor(
                args.workers, upstream["fixed_port"], upstream["stream_port"], env["REDIS_URL"]
            )
            stack.callback(stop, state)
            upstream = {**upstream, "state_port": state_port, "state_pid": state.pid}
        out["describe"] = (
            f"database {env['DATABASE_URL'].split(':', 1)[0]}, "
            f"Redis {'yes' if env.get('REDIS_URL') else 'no'}"
            f"{', Celery worker draining usage' if mode == 'production' else ''}, "
            f"serve --workers {args.workers}"
        )
        measure_all(out, args, upstream, gw_port, gw.pid, env, celery_pid)
    return out


def measure_all(
    out: dict[str, Any],
    args: argparse.Namespace,
    up: dict[str, Any],
    gw_port: int,
    gw_pid: int,
    env: dict[str, str],
    celery_pid: int | None = None,
) -> None:
    """Every load level, direct, floor and gateway in turn, into ``out``. With ``celery_pid``
    (production mode), also the usage drain after the soak and the CPU that the Celery worker
    and Redis spend per request over the soak and the drain."""
    lua, floor_port, floor_pid = up["lua"], up["floor_port"], up["floor_pid"]
    urls = {
        "direct": f"http://127.0.0.1:{up['fixed_port']}",
        "floor": f"http://127.0.0.1:{floor_port}",
        "gateway": f"http://127.0.0.1:{gw_port}",
    }
    pids = {"direct": [], "floor": worker_pids(floor_pid), "gateway": worker_pids(gw_pid)}
    # Production mode's reference for shared state: the floor plus one Redis round trip.
    ports = {"direct": up["stream_port"], "floor": floor_port}
    if "state_port" in up:
        urls["state"] = f"http://127.0.0.1:{up['state_port']}"
        pids["state"] = worker_pids(up["state_pid"])
        ports["state"] = up["state_port"]
    ports["gateway"] = gw_port
    chat = "/v1/chat/completions"
    for name in urls.keys() - {"direct"}:  # warm up: route table, connection pools
        wrk(urls[name] + chat, lua["chat"], 4, 2)
    wrk(urls["gateway"] + "/v1/messages", lua["messages"], 2, 1)
    wrk(urls["gateway"] + "/v1/responses", lua["responses"], 2, 1)
    warm = max(rss_mb(p) for p in pids["gateway"])
    for name in urls:
        out[name] = {}
    rounds = args.rounds
    chat_runs = {name: (urls[name] + chat, lua["chat"]) for name in urls}
    for c in (1, 16, 256):
        print(f"load c={c} ...", file=sys.stderr)
        level = wrk_rounds(chat_runs, c, args.duration, rounds, pids)
        for name in urls:
            out[name][str(c)] = level[name]
    print("translated paths ...", file=sys.stderr)
    g = urls["gateway"]
    translated = {
        "chat": (g + chat, lua["chat"]),
        "messages": (g + "/v1/messages", lua["messages"]),
        "responses": (g + "/v1/responses", lua["responses"]),
    }
    out["translated"] = {
        name: r["p50_ms"] for name, r in wrk_rounds(translated, 1, args.duration, rounds).items()
    }
    print("streaming ...", file=sys.stderr)
    samples = ttft(ports, args.ttft_runs)
    out["ttft"] = {name: statistics.median(v) for name, v in samples.items()}
    out["long_stream"] = long_stream(gw_port)
    out["long_stream_floor"] = long_stream(floor_port)
    # Memory: the soak starts after every load level has run (pools, buffers and caches at
    # their working size), so growth over it is what keeps growing.
    before = max(rss_mb(p) for p in pids["gateway"])
    rps = max(out["gateway"]["16"]["rps"], 1.0)
    # Where production mode's CPU goes besides the workers: the Celery worker records every
    # request's usage and Redis serves every request's scripts, on the same cores here.
    cpu_readers = {"workers": lambda: cpu_s(pids["gateway"])}
    if celery_pid is not None:
        celery = group_pids(celery_pid)
        cpu_readers["celery"] = lambda: cpu_s(celery)
        cpu_readers["redis"] = lambda: redis_cpu_s(env["REDIS_URL"])
    cpu_before = {name: read() for name, read in cpu_readers.items()}
    print(f"soak {args.soak:,} requests (~{args.soak / rps:.0f} s) ...", file=sys.stderr)
    soaked = {"requests": 0.0, "errors": 0.0}
    with probed(urls["gateway"]) as probes:
        while soaked["requests"] < args.soak:  # wrk runs for a time, not a count
            more = wrk(
                urls["gateway"] + chat, lua["chat"], 16, (args.soak - soaked["requests"]) / rps + 1
            )
            soaked["requests"] += more["requests"]
            soaked["errors"] += more["errors"]
            if not more["requests"]:
                break
    after = max(rss_mb(p) for p in pids["gateway"])
    cpu_soak = {"workers": cpu_readers["workers"]() - cpu_before["workers"]}
    if celery_pid is not None:
        # The usage the soak left queued is recorded before the CPU is read: its drain is
        # part of what those requests cost.
        print("usage drain ...", file=sys.stderr)
        out["usage"] = usage_backlog(env, 120)
        cpu_soak |= {n: cpu_readers[n]() - cpu_before[n] for n in ("celery", "redis")}
    out["cpu_soak_ms"] = {
        name: seconds / max(soaked["requests"], 1.0) * 1000 for name, seconds in cpu_soak.items()
    }
    out["rss"] = {
        "warm_mb": warm,
        "before_mb": before,
        "after_mb": after,
        "growth_pct": (after - before) / before * 100,
        "requests": soaked["requests"],
        "soak_errors": soaked["errors"],
        "probes": probes,
        "workers": len(pids["gateway"]),
        "floor_mb": max(rss_mb(p) for p in pids["floor"]),
    }
    if "state" in pids:
        out["rss"]["state_mb"] = max(rss_mb(p) for p in pids["state"])
    # Last: a megabyte body grows the workers' buffers, which would blur the soak's figure.
    print("request bodies ...", file=sys.stderr)
    body: dict[str, float] = {}
    for size in ("1k", "1m"):
        sized = {name: (urls[name] + chat, lua[f"chat_{size}"]) for name in urls if name != "state"}
        for name, r in wrk_rounds(sized, 1, args.duration, rounds).items():
            body[f"{name}_{size}"] = r["p50_ms"]
            body[f"{name}_{size}_errors"] = r["errors"]
    out["body"] = body


def profile(args: argparse.Namespace, up: dict[str, Any], tmp: Path) -> None:
    """A py-spy flame graph of one gateway worker under c=16 (production mode when
    ``DATABASE_URL`` and ``REDIS_URL`` are set, else embedded)."""
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    mode = "production" if _production_ready() else "embedded"
    with ExitStack() as stack:
        _, gw, gw_port, _ = start_mode(stack, mode, args, up, tmp)
        url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        wrk(url, up["lua"]["chat"], 4, 2)
        seconds = max(5, round(args.duration))
        load = threading.Thread(target=wrk, args=(url, up["lua"]["chat"], 16, seconds + 2))
        load.start()
        time.sleep(1)
        worker = worker_pids(gw.pid)[0]
        subprocess.run(
            [
                spy,
                "record",
                "-p",
                str(worker),
                "-d",
                str(seconds),
                "-r",
                "250",
                "-o",
                args.profile,
                "-f",
                "flamegraph" if args.profile.endswith(".svg") else "raw",
                "--nonblocking",
            ],
            check=True,
        )
        load.join()
    print(f"flame graph of one worker ({mode} mode, c=16, {seconds} s): {args.profile}")


def _production_ready() -> bool:
    url = os.environ.get("DATABASE_URL", "")
    return url.startswith(("postgres://", "postgresql://")) and bool(os.environ.get("REDIS_URL"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 s levels, 20k soak, 50 TTFT")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    parser.add_argument("--soak", type=int, help="requests for the RSS check (default 200,000)")
    parser.add_argument("--ttft-runs", type=int, help="stream samples per server (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="slices per load level, in turn")
    parser.add_argument("--aliases", type=int, default=0, help="extra aliases (route table size)")
    parser.add_argument("--modes", default="production,embedded", help="comma-separated")
    parser.add_argument(
        "--profile", metavar="FILE", help="a flame graph (.svg) or raw stacks (else) instead"
    )
    args = parser.parse_args()
    quick = {"duration": 3.0, "soak": 20_000, "ttft_runs": 50}
    full = {"duration": 10.0, "soak": 200_000, "ttft_runs": 200}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (Debian) or build it from source")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
        "modes": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmpdir, ExitStack() as procs:
        tmp = Path(tmpdir)
        fixed, fixed_port, kind = start_fixed_upstream(tmp)
        procs.callback(stop, fixed)
        stream, stream_port = start_stream_upstream()
        procs.callback(stop, stream)
        floor, floor_port = start_floor(args.workers, fixed_port, stream_port)
        procs.callback(stop, floor)
        up = {
            "fixed_port": fixed_port,
            "stream_port": stream_port,
            "floor_port": floor_port,
            "floor_pid": floor.pid,
            "lua": write_lua(tmp),
        }
        results["upstream"] = kind
        if args.profile:
            profile(args, up, tmp)
            return
        for mode in modes:
            if mode == "production" and not _production_ready():
                print(
                    "production mode skipped: it needs DATABASE_URL=postgres://... and REDIS_URL",
                    file=sys.stderr,
                )
                continue
            print(f"== {mode} ==", file=sys.stderr)
            results["modes"][mode] = run_mode(mode, args, tmp, up)
            print(table({"modes": {mode: results["modes"][mode]}}), file=sys.stderr)
    results["seconds"] = time.monotonic() - started
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2))
    m = results["machine"]
    print(
        f"\n{results['date'][:16].replace('T', ' ')} UTC, {m['cores']} cores ({m['cpu']}), "
        f"upstream {kind}, {'quick' if args.quick else 'full'} run "
        f"({args.duration:g} s per level, {args.soak:,}-request soak), "
        f"{results['seconds'] / 60:.1f} min"
    )
    print(table(results))
    print(f"\nJSON: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
