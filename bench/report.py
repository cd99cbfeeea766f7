"""The bench's markdown table: every gateway figure beside the floor's (the same run), the
ratio, the target and whether it is met. In production mode a column also shows the floor of
shared state (the floor plus one Redis round trip per request, ``bench/floor.py --redis``),
each figure with its ratio to the floor's: what the one round trip that routing, breaker and
limits shared across processes need takes of a target on its own."""

from __future__ import annotations

from typing import Any


def _f(value: float, unit: str = "ms") -> str:
    if value != value:  # NaN
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "rps":
        return f"{value:,.0f}/s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.3g}"


def _ratio(a: float, b: float) -> float:
    # A floor figure of zero or below (its p99 under direct's, run-to-run noise) gives no
    # meaningful ratio: shown as "-" and never counted as met.
    return a / b if b > 0 else float("nan")


def _x(ratio: float) -> str:
    return "-" if ratio != ratio else f"{ratio:.2f}x"


def rows(mode: dict[str, Any]) -> list[tuple[str, ...]]:
    """(measure, direct, floor, floor + Redis round trip, gateway, ratio, target + met) for one
    mode's results; the round trip's column is "-" where the mode has none (embedded)."""
    d, f, g = mode["direct"], mode["floor"], mode["gateway"]
    s = mode.get("state")
    out: list[tuple[str, ...]] = []

    def add(
        measure: str,
        direct: str,
        floor: str,
        gw: str,
        ratio: float,
        target: str,
        ok: bool,
        state: str = "-",
    ):
        met = f"{target} {'**met**' if ok else 'MISSED'}"
        out.append((measure, direct, floor, state if s else "-", gw, _x(ratio), met))

    def overhead(figure: dict[str, Any], key: str) -> str:
        """A state floor figure as overhead over direct, with its ratio to the floor's."""
        so, fo = figure[key] - d["1"][key], f["1"][key] - d["1"][key]
        return f"{_f(figure[key])} ({so:+.2f}, {_x(_ratio(so, fo))})"

    fo = f["1"]["p50_ms"] - d["1"]["p50_ms"]
    go = g["1"]["p50_ms"] - d["1"]["p50_ms"]
    r = _ratio(go, fo)
    add(
        "c=1 p50 (overhead over direct)",
        _f(d["1"]["p50_ms"]),
        f"{_f(f['1']['p50_ms'])} ({fo:+.2f})",
        f"{_f(g['1']['p50_ms'])} ({go:+.2f})",
        r,
        "<= 2x",
        r <= 2,
        overhead(s["1"], "p50_ms") if s else "-",
    )
    fo = f["1"]["p99_ms"] - d["1"]["p99_ms"]
    go = g["1"]["p99_ms"] - d["1"]["p99_ms"]
    r = _ratio(go, fo)
    add(
        "c=1 p99 (overhead over direct)",
        _f(d["1"]["p99_ms"]),
        f"{_f(f['1']['p99_ms'])} ({fo:+.2f})",
        f"{_f(g['1']['p99_ms'])} ({go:+.2f})",
        r,
        "<= 3x",
        r <= 3,
        overhead(s["1"], "p99_ms") if s else "-",
    )
    r = _ratio(g["16"]["rps"], f["16"]["rps"])
    add(
        "c=16 throughput",
        _f(d["16"]["rps"], "rps"),
        _f(f["16"]["rps"], "rps"),
        _f(g["16"]["rps"], "rps"),
        r,
        ">= 0.5x",
        r >= 0.5,
        f"{_f(s['16']['rps'], 'rps')} ({_x(_ratio(s['16']['rps'], f['16']['rps']))})" if s else "-",
    )
    r = _ratio(g["16"]["p99_ms"], f["16"]["p99_ms"])
    add(
        "c=16 p99",
        _f(d["16"]["p99_ms"]),
        _f(f["16"]["p99_ms"]),
        _f(g["16"]["p99_ms"]),
        r,
        "<= 3x",
        r <= 3,
        f"{_f(s['16']['p99_ms'])} ({_x(_ratio(s['16']['p99_ms'], f['16']['p99_ms']))})"
        if s
        else "-",
    )
    add(
        "c=16 errors",
        str(int(d["16"]["errors"])),
        str(int(f["16"]["errors"])),
        str(int(g["16"]["errors"])),
        float("nan"),
        "0",
        g["16"]["errors"] == 0,
        str(int(s["16"]["errors"])) if s else "-",
    )
    r = _ratio(g["256"]["rps"], g["16"]["rps"])
    add(
        "c=256 throughput (ratio: to the gateway's c=16)",
        _f(d["256"]["rps"], "rps"),
        _f(f["256"]["rps"], "rps"),
        f"{_f(g['256']['rps'], 'rps')}, {int(g['256']['errors'])} errors",
        r,
        ">= 0.9x, 0 errors",
        r >= 0.9 and g["256"]["errors"] == 0,
        f"{_f(s['256']['rps'], 'rps')}, {int(s['256']['errors'])} errors "
        f"({_x(_ratio(s['256']['rps'], s['16']['rps']))})"
        if s
        else "-",
    )
    add(
        "c=256 p99 (stated)",
        _f(d["256"]["p99_ms"]),
        _f(f["256"]["p99_ms"]),
        _f(g["256"]["p99_ms"]),
        _ratio(g["256"]["p99_ms"], f["256"]["p99_ms"]),
        "stated",
        True,
        f"{_f(s['256']['p99_ms'])} ({_x(_ratio(s['256']['p99_ms'], f['256']['p99_ms']))})"
        if s
        else "-",
    )
    t = mode["ttft"]
    fo, go = t["floor"] - t["direct"], t["gateway"] - t["direct"]
    r = _ratio(go, fo)
    so = t.get("state", float("nan")) - t["direct"]
    add(
        "stream TTFT p50 (overhead)",
        _f(t["direct"]),
        f"{_f(t['floor'])} ({fo:+.2f})",
        f"{_f(t['gateway'])} ({go:+.2f})",
        r,
        "<= 2x",
        r <= 2,
        f"{_f(t['state'])} ({so:+.2f}, {_x(_ratio(so, fo))})" if "state" in t else "-",
    )
    ls, fs = mode["long_stream"], mode.get("long_stream_floor")
    # Relayed, not buffered: the first chunk arrives long before the last (the upstream takes
    # 1 s to pace them out) and most arrive on their own. On a loaded machine a reader that is
    # descheduled for a moment finds a few chunks together, so not every arrival is distinct.
    whole = ls["first_chunk_ms"] < ls["last_chunk_ms"] / 4 and ls["distinct_arrival_times"] >= (
        ls["chunks"] / 2
    )
    add(
        "500-chunk stream, 2 ms apart (distinct arrivals)",
        "-",
        f"{int(fs['distinct_arrival_times'])} of {int(fs['chunks'])}" if fs else "-",
        f"{int(ls['distinct_arrival_times'])} of {int(ls['chunks'])}, first at "
        f"{ls['first_chunk_ms']:.0f} ms, last at {ls['last_chunk_ms']:.0f} ms",
        float("nan"),
        "chunk by chunk",
        whole,
    )
    tr = mode["translated"]
    base = tr["chat"] - d["1"]["p50_ms"]
    for name, label in (
        ("messages", "Anthropic Messages -> OpenAI instance"),
        ("responses", "Responses API -> chat-only instance"),
    ):
        over = tr[name] - d["1"]["p50_ms"]
        r = _ratio(over, base)
        add(
            f"{label}, c=1 p50 (ratio: to plain chat's overhead +{base:.2f})",
            "-",
            "-",
            f"{_f(tr[name])} (+{over:.2f})",
            r,
            "<= 1.3x",
            r <= 1.3,
        )
    b = mode["body"]
    fd, gd = b["floor_1m"] - b["floor_1k"], b["gateway_1m"] - b["gateway_1k"]
    add(
        "1 MB body minus 1 KB body, c=1 p50",
        f"+{b['direct_1m'] - b['direct_1k']:.2f} ms",
        f"+{fd:.2f} ms",
        f"+{gd:.2f} ms",
        _ratio(gd, fd),
        "<= +2 ms",
        gd <= 2,
    )
    fc, gc = f["16"].get("cpu_ms_per_request", 0), g["16"].get("cpu_ms_per_request", 0)
    r = _ratio(gc, fc)
    sc = s["16"].get("cpu_ms_per_request", 0) if s else 0
    add(
        "worker CPU per request, c=16 (all workers, /proc)",
        "-",
        _f(fc),
        _f(gc),
        r,
        "<= 2x",
        r <= 2,
        f"{_f(sc)} ({_x(_ratio(sc, fc))})" if s else "-",
    )
    soak = mode.get("cpu_soak_ms", {})
    if "celery" in soak:
        add(
            "CPU per request over the soak and its usage drain (stated)",
            "-",
            "-",
            f"workers {soak['workers']:.2f} ms, Celery {soak['celery']:.3f} ms, "
            f"Redis {soak['redis']:.3f} ms",
            float("nan"),
            "stated",
            True,
        )
    m = mode["rss"]
    flat = m["growth_pct"] < 5
    probes = m.get("probes")
    probed = (
        f"; /health/ready every 1 s, /metrics every 5 s: {probes['sent']} sent, "
        f"{probes['failed']} not 200"
        if probes
        else ""
    )
    add(
        f"RSS per worker, max (soak of {int(m['requests']):,} requests at c=16{probed})",
        "-",
        _f(m["floor_mb"], "MB"),
        f"{m['before_mb']:.0f} -> {m['after_mb']:.0f} MB ({m['growth_pct']:+.1f}%)",
        _ratio(m["after_mb"], m["floor_mb"]),
        "<= 100 MB, < 5%",
        m["after_mb"] <= 100 and flat,
        _f(m["state_mb"], "MB") if "state_mb" in m else "-",
    )
    u = mode.get("usage")
    if u:
        add(
            "usage queue after the load (Celery worker draining)",
            "-",
            "-",
            f"{int(u['backlog'])} events queued at the end, 0 after {u['seconds']:.1f} s"
            if u["drained"]
            else f"{int(u['left'])} still queued after {u['seconds']:.0f} s",
            float("nan"),
            "drains to 0",
            bool(u["drained"]),
        )
    return out


def table(results: dict[str, Any]) -> str:
    parts = []
    for name, mode in results["modes"].items():
        parts.append(f"\n**{name}** ({mode['describe']})\n")
        parts.append(
            "| measure | direct | floor | floor + Redis round trip | gateway | gateway / floor "
            "| target |"
        )
        parts.append("|---|---|---|---|---|---|---|")
        parts.extend("| " + " | ".join(row) + " |" for row in rows(mode))
    return "\n".join(parts)
