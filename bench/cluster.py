"""Scale-out on one machine: ``make bench-cluster``.

Starts, on a throwaway PostgreSQL database and an empty Redis database (bench/run.py's
pieces: ``DATABASE_URL=postgres://...`` and ``REDIS_URL`` are required), three gateway web
processes (``manage.py serve --workers 1`` each, own ports), two Celery workers draining usage
(one with beat) and nginx in front (bench/cluster_lb.py: round robin with keepalive, its
configuration and logs in a temporary directory), then measures:

a. throughput: one web process alone, the same behind nginx, and three behind nginx, with the
   same wrk load (rounds in turn), with the gateway processes' CPU per request and how busy
   the whole machine was;
b. shared state: a virtual key with a requests/min limit hit through all three processes
   (admitted must equal the limit, not three times it), and an instance whose upstream fails
   (calls reaching it must stop at the breaker's threshold, not three times it); Redis
   commands per request (MONITOR on the bench's database) and PostgreSQL writes of the drain;
c. a web process SIGKILLed under load: failed requests against those in flight on it (nginx's
   access log), and usage records against 2xx answers once the workers have drained.

``--quick`` shortens every phase (about 2 minutes instead of 4).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from cluster_lb import kill_account, lb_config, parse_log
from measure import VKEY, WRK_LUA, chat_body, wrk
from run import (
    bench_config,
    free_port,
    machine,
    prepare_mode,
    start_celery,
    start_fixed_upstream,
    start_gateway,
    start_stream_upstream,
    stop,
    usage_backlog,
    wait_port,
)

WEB = 3
LIMITED_KEY = "sk-gw-limited-" + "1" * 32
KILL_KEY = "sk-gw-killrun-" + "2" * 32
THRESHOLD = 5


def cluster_config(fixed_port: int, stream_port: int, rpm: int) -> str:
    """The bench configuration plus a failing instance in front of a good one (alias
    ``bench-flaky``), a rate-limited key and the kill phase's key (its usage counted apart)."""
    return bench_config(
        fixed_port,
        stream_port,
        0,
        providers=(
            "  - name: bench-flaky",
            "    type: openai",
            f"    base_url: http://127.0.0.1:{stream_port}/fail/v1",
            "    max_retries: 0",
            "    health_check: {interval: 86400}",
            "    keys:",
            "      - {name: k1, api_key: sk-upstream-bench-1234567890, primary: true}",
        ),
        mappings=(
            "  - {alias: bench-flaky, provider: bench-flaky, model: gpt-4o-mini, priority: 1}",
            "  - {alias: bench-flaky, provider: bench-fixed, model: gpt-4o-mini, priority: 2}",
        ),
        keys=(
            f"  - {{name: limited, key: {LIMITED_KEY},"
            f" rate_limit: {{requests_per_minute: {rpm}}}}}",
            f"  - {{name: killrun, key: {KILL_KEY}}}",
        ),
        routing=f"{{circuit_breaker: {{failure_threshold: {THRESHOLD}, recovery_timeout: 600}}}}",
    )


def busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def throughput(urls: dict[str, str], pids: dict[str, list[int]], lua: Path, args: Any) -> dict:
    """wrk on each target in turn, ``args.rounds`` times: rps, p50/p99, gateway CPU per
    request and machine CPU busy share (medians of the rounds; CPU over all of them)."""
    got: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    for _ in range(args.rounds):
        for name, url in urls.items():
            b0, t0 = busy()
            r = wrk(url, lua, args.connections, args.duration / args.rounds, pids[name])
            b1, t1 = busy()
            r["machine_busy"] = (b1 - b0) / (t1 - t0)
            got[name].append(r)
    out = {}
    for name, runs in got.items():
        runs.sort(key=lambda r: r["rps"])
        mid = runs[len(runs) // 2]
        cpu = sum(r.get("cpu_ms_per_request", 0) * r["requests"] for r in runs)
        requests = sum(r["requests"] for r in runs)
        out[name] = {
            **mid,
            "requests_total": requests,
            "cpu_ms_per_request": cpu / max(requests, 1),
            "errors": sum(r["errors"] for r in runs),
        }
    return out


async def fire(url: str, key: str, model: str, n: int, concurrency: int) -> list[tuple[int, str]]:
    """``n`` chat requests, ``concurrency`` at a time: (status, backend that served it)."""
    import aiohttp

    out: list[tuple[int, str]] = []
    body = chat_body().replace("bench-chat", model)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    left = iter(range(n))

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in left:
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                out.append((r.status, r.headers.get("X-Upstream-Addr", "-")))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return out


def rate_limit(lb: str, rpm: int) -> dict[str, Any]:
    """Three times the key's limit through the balancer, inside one rate-limit window."""
    into = time.time() % 60
    if into > 45:  # a burst across a window edge would be admitted by two windows
        time.sleep(61 - into)
    got = asyncio.run(fire(lb, LIMITED_KEY, "bench-chat", 3 * rpm, 6))
    ok = [addr for status, addr in got if status == 200]
    return {
        "limit": rpm,
        "sent": len(got),
        "admitted": len(ok),
        "refused_429": sum(1 for s, _ in got if s == 429),
        "admitted_by_process": sorted(Counter(ok).values(), reverse=True),
        "processes_seen": len({a for _, a in got}),
    }


def breaker(lb: str, stream_port: int, n: int) -> dict[str, Any]:
    """``n`` requests, one at a time, to an alias whose first instance always fails."""
    import httpx

    before = httpx.get(f"http://127.0.0.1:{stream_port}/calls").json()["fail"]
    got = asyncio.run(fire(lb, VKEY, "bench-flaky", n, 1))
    calls = httpx.get(f"http://127.0.0.1:{stream_port}/calls").json()["fail"] - before
    return {
        "requests": n,
        "answered_200": sum(1 for s, _ in got if s == 200),
        "failing_upstream_calls": calls,
        "threshold": THRESHOLD,
        "per_process_would_be": THRESHOLD * WEB,
        "processes_seen": len({a for _, a in got}),
    }


def redis_ops(env: dict[str, str], lb: str, n: int) -> dict[str, Any]:
    """Commands the bench's Redis database received while ``n`` requests ran one at a time
    (MONITOR, so the figures are counts, not rates)."""
    import redis

    db = int(env["REDIS_URL"].rsplit("/", 1)[1] or 0)
    seen: Counter[str] = Counter()
    done = threading.Event()

    def watch() -> None:
        client = redis.Redis.from_url(env["REDIS_URL"])
        with client.monitor() as m:
            for cmd in m.listen():
                if done.is_set():
                    break
                if int(cmd.get("db", -1)) == db:
                    name = cmd["command"].split(" ", 1)[0].upper()
                    # Commands a script runs inside Redis are not round trips of their own.
                    seen[f"lua:{name}" if cmd.get("client_type") == "lua" else name] += 1

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.5)
    seen.clear()
    asyncio.run(fire(lb, VKEY, "bench-chat", n, 1))
    time.sleep(0.1)  # the last XADD lingers 10 ms
    done.set()
    snapshot = dict(seen)
    per_request = {k: v / n for k, v in snapshot.items()}
    return {"requests": n, "commands": snapshot, "per_request": per_request}


def redis_info(env: dict[str, str]) -> dict[str, float]:
    """The Redis server's CPU seconds and per-command calls and microseconds so far (the whole
    server: other databases' clients count too)."""
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    cpu = client.info("cpu")
    out = {"cpu_s": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])}
    for name, stat in client.info("commandstats").items():
        if name in ("cmdstat_evalsha", "cmdstat_xadd", "cmdstat_get"):
            out[name[8:] + "_calls"] = float(stat["calls"])
            out[name[8:] + "_usec"] = float(stat["usec"])
    client.close()
    return out


def redis_cost(before: dict[str, float], after: dict[str, float], requests: float) -> dict:
    """Microseconds per call of the web path's commands over a phase, and the server's CPU per
    request (an upper bound on a shared server)."""
    out: dict[str, float] = {"server_cpu_us_per_request": 0.0}
    for cmd in ("evalsha", "xadd", "get"):
        calls = after.get(f"{cmd}_calls", 0) - before.get(f"{cmd}_calls", 0)
        usec = after.get(f"{cmd}_usec", 0) - before.get(f"{cmd}_usec", 0)
        out[f"{cmd}_us_per_call"] = usec / calls if calls else float("nan")
    if requests:
        out["server_cpu_us_per_request"] = (after["cpu_s"] - before["cpu_s"]) / requests * 1e6
    return out


DRAIN_LINE = re.compile(r"Task gateway\.usage_drain\[[^]]+\] succeeded in ([\d.]+)s: (\{.*\})")


def drain_stats(logs: list[Path], offsets: list[int]) -> dict[str, float]:
    """The Celery workers' usage drains logged since ``offsets``: how many read anything,
    rows read, and their time (the drain's rate is PostgreSQL's write rate for usage)."""
    runs = rows = 0
    seconds = 0.0
    for log, offset in zip(logs, offsets, strict=True):
        with log.open(errors="replace") as f:
            f.seek(offset)
            for m in DRAIN_LINE.finditer(f.read()):
                read = int(ast.literal_eval(m.group(2)).get("read", 0))
                if read:
                    runs, rows, seconds = runs + 1, rows + read, seconds + float(m.group(1))
    return {"drains": runs, "rows": rows, "seconds": seconds}


def pg_stats(env: dict[str, str]) -> dict[str, float]:
    import psycopg

    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        commits, inserted, updated = conn.execute(
            "SELECT xact_commit, tup_inserted, tup_updated + tup_deleted FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()  # type: ignore[misc]
        rows = conn.execute("SELECT count(*) FROM gateway_usagerecord").fetchone()[0]  # type: ignore[index]
    return {"commits": commits, "inserted": inserted, "updated": updated, "usage_rows": rows}


def usage_records(env: dict[str, str], key_name: str) -> dict[str, int]:
    """Request id -> status of the usage records of the virtual key named ``key_name``."""
    import psycopg

    url = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT r.request_id, r.status_code FROM gateway_usagerecord r"
            " JOIN gateway_virtualkey k ON k.id = r.virtual_key_id WHERE k.name = %s",
            (key_name,),
        ).fetchall()
    return {str(i): int(s) for i, s in rows}


def kill_run(
    env: dict[str, str], lb: str, victim: subprocess.Popen[bytes], port: int, tmp: Path, args: Any
) -> dict[str, Any]:
    """wrk through the balancer; a third of the way in, SIGKILL one web process."""
    lua = tmp / "kill.lua"
    lua.write_text(WRK_LUA.format(body=chat_body(), key=KILL_KEY))
    log = tmp / "lb-access.log"
    time.sleep(1.5)  # nginx flushes its log buffer every second
    offset = log.stat().st_size
    result: dict[str, Any] = {}
    load = threading.Thread(
        target=lambda: result.update(wrk(lb, lua, args.connections, args.kill_duration))
    )
    load.start()
    time.sleep(args.kill_duration / 3)
    killed_at = time.time()
    os.kill(victim.pid, signal.SIGKILL)
    load.join()
    time.sleep(1.5)
    with log.open() as f:
        f.seek(offset)
        entries = parse_log(f)
    account = kill_account(entries, f"127.0.0.1:{port}", killed_at)
    print("usage drain ...", file=sys.stderr)
    drain = usage_backlog(env, 120)
    time.sleep(1)
    records = usage_records(env, "killrun")
    answered = {e.request_id for e in entries if 200 <= e.status < 300}
    return {
        "wrk": result,
        "account": account.__dict__,
        "usage_records": dict(Counter(records.values())),
        "answered_without_record": len(answered - records.keys()),
        # Answered by the killed process and unrecorded: its journal should have kept them.
        "lost_answered_by_killed": sum(
            1
            for e in entries
            if e.request_id in answered - records.keys() and e.backends[-1] == f"127.0.0.1:{port}"
        ),
        "lost_ended_ms_before_kill": sorted(
            round((killed_at - e.end) * 1000)
            for e in entries
            if e.request_id in answered - records.keys()
        ),
        "records_without_answer": len(records.keys() - answered),
        "drain": drain,
        "journal_events_adopted": journal_adopted(Path(env["GATEWAY_STATE_DIR"])),
    }


def journal_adopted(state: Path) -> int:
    """Events the Celery workers recorded from dead processes' journal segments (their drain
    logs each adopted file: ``recorded orphan spool NAME.wal (N lines)``)."""
    found = 0
    for log in state.glob("worker*.log"):
        for match in re.finditer(
            r"recorded orphan spool \S+\.wal \((\d+) lines\)", log.read_text()
        ):
            found += int(match.group(1))
    return found


def start_lb(tmp: Path, backends: list[int]) -> tuple[subprocess.Popen[bytes], int, int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port, one_port = free_port(), free_port()
    conf = tmp / "lb.conf"
    conf.write_text(lb_config(tmp=tmp, port=port, one_port=one_port, backends=backends))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"])
    wait_port(port)
    return proc, port, one_port


def run(args: Any, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        fixed, fixed_port, kind = start_fixed_upstream(tmp)
        stack.callback(stop, fixed)
        stream, stream_port = start_stream_upstream()
        stack.callback(stop, stream)
        out["upstream"] = kind
        env = prepare_mode(
            stack, "production", tmp, cluster_config(fixed_port, stream_port, args.rpm)
        )
        # INFO: each usage drain logs what it read and how long it took (drain_stats).
        stack.callback(stop, start_celery(env, beat=True, name="worker1", loglevel="INFO"))
        stack.callback(stop, start_celery(env, beat=False, name="worker2", loglevel="INFO"))
        state = Path(env["GATEWAY_STATE_DIR"])
        logs = [state / "worker1.log", state / "worker2.log"]
        webs = []
        for i in range(WEB):
            proc, port = start_gateway(env, 1, log=f"serve-{i + 1}.log")
            stack.callback(stop, proc)
            webs.append((proc, port))
        lb, lb_port, one_port = start_lb(tmp, [p for _, p in webs])
        stack.callback(stop, lb)
        chat = "/v1/chat/completions"
        lua = tmp / "chat.lua"
        lua.write_text(WRK_LUA.format(body=chat_body(), key=VKEY))
        urls = {
            "1 process, direct": f"http://127.0.0.1:{webs[0][1]}{chat}",
            "1 process behind nginx": f"http://127.0.0.1:{one_port}{chat}",
            f"{WEB} processes behind nginx": f"http://127.0.0.1:{lb_port}{chat}",
        }
        pids = {
            "1 process, direct": [webs[0][0].pid],
            "1 process behind nginx": [webs[0][0].pid],
            f"{WEB} processes behind nginx": [p.pid for p, _ in webs],
        }
        for url in urls.values():  # warm up: route tables, pools, nginx keepalive
            wrk(url, lua, args.connections, 2)
        lb_url = urls[f"{WEB} processes behind nginx"]
        print("throughput ...", file=sys.stderr)
        pg0, t0, rd0 = pg_stats(env), time.monotonic(), redis_info(env)
        offsets = [log.stat().st_size for log in logs]
        out["throughput"] = throughput(urls, pids, lua, args)
        requests = sum(r["requests_total"] for r in out["throughput"].values())
        out["redis_cost"] = redis_cost(rd0, redis_info(env), requests)
        out["drain_after_throughput"] = usage_backlog(env, 120)
        pg1 = pg_stats(env)
        time.sleep(0.5)  # the last drain's log line
        out["drains"] = drain_stats(logs, offsets)
        out["postgres"] = {
            "seconds": time.monotonic() - t0,
            "commits": pg1["commits"] - pg0["commits"],
            "inserted": pg1["inserted"] - pg0["inserted"],
            "updated": pg1["updated"] - pg0["updated"],
            "usage_rows": pg1["usage_rows"] - pg0["usage_rows"],
        }
        print("redis commands per request ...", file=sys.stderr)
        out["redis"] = redis_ops(env, lb_url, args.monitor)
        print("rate limit ...", file=sys.stderr)
        out["rate_limit"] = rate_limit(lb_url, args.rpm)
        print("breaker ...", file=sys.stderr)
        out["breaker"] = breaker(lb_url, stream_port, args.breaker)
        print("kill ...", file=sys.stderr)
        out["kill"] = kill_run(env, lb_url, webs[-1][0], webs[-1][1], tmp, args)
    return out


def main() -> None:
    from cluster_report import report

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short phases (about 2 minutes)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--duration", type=float, help="seconds per throughput target (20)")
    parser.add_argument("--rounds", type=int, default=3, help="slices per target, in turn")
    parser.add_argument("--kill-duration", type=float, help="seconds of the kill run (30)")
    parser.add_argument("--rpm", type=int, default=60, help="the limited key's requests/min")
    parser.add_argument("--breaker", type=int, default=30, help="requests to the failing alias")
    parser.add_argument("--monitor", type=int, default=200, help="requests under MONITOR")
    args = parser.parse_args()
    for key, quick, full in (("duration", 6.0, 20.0), ("kill_duration", 9.0, 30.0)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        sys.exit("bench/cluster.py needs DATABASE_URL=postgres://... and REDIS_URL (empty db)")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        sys.exit("nginx is not installed: apt-get install nginx-light")
    started = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gw-cluster-") as tmpdir:
        results = run(args, Path(tmpdir))
    results.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        args=vars(args),
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        seconds=time.monotonic() - started,
    )
    print(report(results))


if __name__ == "__main__":
    main()
