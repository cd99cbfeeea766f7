"""bench/cluster.py's figures as short markdown tables, and the JSON under bench/results/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Web-path round trips (routing state, usage stream, config version) against the Celery
# workers' (broker, beat, drain): MONITOR does not say which process sent what.
WEB_COMMANDS = ("EVALSHA", "EVAL", "XADD", "GET", "MULTI", "EXEC")


def redis_line(rd: dict[str, Any]) -> str:
    per = rd["per_request"]
    trips = {c: v for c, v in per.items() if not c.startswith("lua:")}
    inside = sum(v for c, v in per.items() if c.startswith("lua:"))
    web = sum(v for c, v in trips.items() if c in WEB_COMMANDS)
    return (
        f"Redis per request ({rd['requests']} requests one at a time, MONITOR on the bench's "
        f"database): {web:.2f} web round trips ("
        + ", ".join(f"{c} {v:.2f}" for c, v in sorted(trips.items()) if c in WEB_COMMANDS)
        + f"), {inside:.1f} commands run inside the scripts; Celery's own: "
        + (", ".join(f"{c} {v:.2f}" for c, v in sorted(trips.items()) if c not in WEB_COMMANDS))
    )


def throughput_rows(t: dict[str, Any]) -> list[str]:
    base = next(iter(t.values()))["rps"] or 1.0
    out = [
        "| target | requests/s | vs 1 alone | p50 | p99 | errors | gateway CPU/request | "
        "gateway cores | machine busy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in t.items():
        out.append(
            f"| {name} | {r['rps']:,.0f} | {r['rps'] / base:.2f}x | {r['p50_ms']:.2f} ms | "
            f"{r['p99_ms']:.2f} ms | {r['errors']:.0f} | {r['cpu_ms_per_request']:.2f} ms | "
            f"{r['rps'] * r['cpu_ms_per_request'] / 1000:.2f} | {r['machine_busy'] * 100:.0f}% |"
        )
    return out


def report(results: dict[str, Any]) -> str:
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"cluster-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    a = results["args"]
    m = results["machine"]
    la0, la1 = results["loadavg_before"], results["loadavg_after"]
    lines = [
        f"{results['date'][:16].replace('T', ' ')} UTC, {m['cores']} cores ({m['cpu']}), "
        f"upstream {results['upstream']}, wrk c={a['connections']}, "
        f"{a['duration']:g} s per target in {a['rounds']} rounds, "
        f"{results['seconds'] / 60:.1f} min; loadavg {la0[0]:.2f} before, {la1[0]:.2f} after",
        "",
        "a. throughput (serve --workers 1 per process; PostgreSQL, Redis, 2 Celery workers)",
        "",
        *throughput_rows(results["throughput"]),
    ]
    rl, br, k = results["rate_limit"], results["breaker"], results["kill"]
    acc = k["account"]
    rd = results["redis"]
    pg, rc, dr = results["postgres"], results["redis_cost"], results["drains"]
    lost = k["answered_without_record"]
    verdict = (
        "yes"
        if lost == 0
        else (
            f"NO ({lost} lost, {k['lost_answered_by_killed']} answered by the killed process, "
            f"ending {k['lost_ended_ms_before_kill']} ms before the kill call)"
        )
    )
    lines += [
        "",
        "| check | expected | measured | ok |",
        "|---|---|---|---|",
        f"| b. key at {rl['limit']} requests/min, {rl['sent']} sent over "
        f"{rl['processes_seen']} processes | admitted = {rl['limit']} | {rl['admitted']} "
        f"admitted (by process {rl['admitted_by_process']}), {rl['refused_429']} got 429 | "
        f"{'yes' if rl['admitted'] == rl['limit'] else 'NO'} |",
        f"| b. failing instance, {br['requests']} requests one at a time over "
        f"{br['processes_seen']} processes | calls = threshold {br['threshold']} "
        f"(per-process breakers: {br['per_process_would_be']}) | "
        f"{br['failing_upstream_calls']} calls, {br['answered_200']} answered 200 by failover | "
        f"{'yes' if br['failing_upstream_calls'] <= br['threshold'] else 'NO'} |",
        f"| c. SIGKILL 1 of 3 mid-run, {acc['requests']:,} requests, c={a['connections']} | "
        "failed <= in flight on it (handed to it, never answered) | "
        f"{acc['failed']} failed, {acc['failed_on_dead']} of them on it, ending "
        f"{acc['first_failure_ms']:.0f}-{acc['last_failure_ms']:.0f} ms after the kill call; "
        f"{acc['retried_to_live']} refused connects retried elsewhere; "
        f"{acc['client_gone']} 499 (wrk stopping) | "
        f"{'yes' if acc['failed'] == acc['failed_on_dead'] <= a['connections'] else 'NO'} |",
        f"| c. usage records vs 2xx answers (by request id) | none lost | "
        f"{k['answered_without_record']} of {acc['answered_2xx']:,} 2xx answers without a "
        f"record; records by status {k['usage_records']}, {k['records_without_answer']} of "
        f"them for requests without a 2xx in nginx's log (the {acc['client_gone']} 499s, "
        "and requests killed after their usage event left); "
        f"{k.get('journal_events_adopted', 0)} events recorded from the killed process's "
        "journal | "
        f"{verdict} |",
        "",
        redis_line(rd),
        "Redis cost during the throughput phase (INFO, whole server): EVALSHA "
        f"{rc['evalsha_us_per_call']:.1f} us per call, XADD {rc['xadd_us_per_call']:.1f} us; "
        f"server CPU {rc['server_cpu_us_per_request']:.0f} us per gateway request (upper bound: "
        "other databases' clients share the server)",
        f"PostgreSQL during the throughput phase and its drain ({pg['seconds']:.0f} s, the "
        f"bench's database only): {pg['usage_rows']:,} usage rows "
        f"({pg['usage_rows'] / max(pg['seconds'], 1):,.0f}/s), "
        f"{pg['inserted'] / max(pg['usage_rows'], 1):.2f} tuples inserted and "
        f"{pg['updated'] / max(pg['usage_rows'], 1):.3f} updated or deleted per usage row "
        f"(COPY into a temporary table, then INSERT ... SELECT), {pg['commits']:,} "
        "transactions (autocommit reads included)",
        f"Usage drains with rows in that time: {dr['drains']}, {dr['rows']:,} rows "
        f"({dr['rows'] / max(dr['drains'], 1):,.0f} per drain, in transactions of up to 500), "
        f"{dr['seconds']:.2f} s of drain time: {dr['rows'] / max(dr['seconds'], 1e-9):,.0f} "
        "rows/s while draining",
        f"JSON: bench/results/{path.name}",
    ]
    return "\n".join(lines)
