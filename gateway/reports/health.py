"""Read side of the provider health page: /health's per-instance report plus 24 h or 7 day
history, the last error text and a staleness flag (no probe for two intervals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.monitoring.health import health_report
from gateway.reports.charts import sparkline_points
from providers.models import HealthCheck, Provider
from providers.selectors import provider_keys_undecryptable

SLOTS = 48  # buckets over the window: half hours over 24 h, 3.5 hours over 7 days
WINDOWS = {"24h": 1, "7d": 7}  # view -> days
STALE_FACTOR = 2  # a last probe older than this many intervals means probes stopped
STATUS_RANK = {"healthy": 0, "degraded": 1, "down": 2}
SLOT_COLORS = {"healthy": "#10b981", "degraded": "#f59e0b", "down": "#ef4444"}
SPARK_WIDTH = 140


@dataclass
class HealthRow:
    id: int
    name: str
    type: str
    enabled: bool
    status: str
    circuit_state: str
    failure_count: int
    latency_ms: float | None
    last_checked: datetime | None
    last_success: datetime | None
    last_failure: datetime | None
    error_category: str
    sparkline: str
    checks_24h: int
    uptime_24h: float | None
    latency_min: float | None
    latency_max: float | None
    slots: list[tuple[float, str]]  # (x, colour) of each bucket's worst probe
    undecryptable_keys: list[str]  # keys left out of routing: no configured key decrypts them
    interval_s: int = 300
    stale: bool = False
    stale_reason: str = ""
    last_error: str = ""  # redacted when the probe stored it
    last_error_at: datetime | None = None


def _dt(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _stale_reason(last: datetime | None, interval: int, now: datetime) -> str:
    if last is None:
        return ""
    age = (now - last).total_seconds()
    if age <= STALE_FACTOR * interval:
        return ""
    return (
        f"last probe {int(age // 60)} min ago, interval {interval} s: "
        "probes have stopped (celery beat not running?)"
    )


def health_rows(*, days: int = 1) -> list[HealthRow]:
    """One row per provider instance, ordered by name; history over the last ``days`` days."""
    report = health_report()
    now = timezone.now()
    since = now - timedelta(days=days)
    slot_seconds = days * 86400 / SLOTS
    intervals = dict(Provider.objects.values_list("id", "health_check_interval"))
    history: dict[int, list[tuple[datetime, float | None, str]]] = {}
    errors: dict[int, tuple[datetime, str]] = {}
    for pid, at, latency, status, message in (
        HealthCheck.objects.filter(checked_at__gte=since)
        .order_by("checked_at")
        .values_list("provider_id", "checked_at", "latency_ms", "status", "error_message")
    ):
        history.setdefault(pid, []).append((at, latency, status))
        if message:
            errors[pid] = (at, message)
    undecryptable = provider_keys_undecryptable()
    rows = []
    for info in report["providers"].values():
        checks = history.get(info["id"], [])
        latency_sum = [0.0] * SLOTS
        latency_n = [0] * SLOTS
        worst = [""] * SLOTS
        for at, latency, status in checks:
            slot = min(int((at - since).total_seconds() // slot_seconds), SLOTS - 1)
            if latency is not None:
                latency_sum[slot] += latency
                latency_n[slot] += 1
            if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(worst[slot], -1):
                worst[slot] = status
        series = [latency_sum[i] / latency_n[i] if latency_n[i] else None for i in range(SLOTS)]
        up = sum(1 for _, _, status in checks if status != "down")
        latencies = [latency for _, latency, _ in checks if latency is not None]
        last_checked = _dt(info["last_checked"])
        interval = int(intervals.get(info["id"]) or 300)
        reason = _stale_reason(last_checked, interval, now) if info["enabled"] else ""
        error_at, error = errors.get(info["id"], (None, ""))
        rows.append(
            HealthRow(
                id=info["id"],
                name=info["name"],
                type=info["type"],
                enabled=info["enabled"],
                status=info["status"],
                circuit_state=info["circuit_state"],
                failure_count=info["failure_count"],
                latency_ms=info["latency_ms"],
                last_checked=last_checked,
                last_success=_dt(info["last_success"]),
                last_failure=_dt(info["last_failure"]),
                error_category=info["error_category"],
                sparkline=sparkline_points(series, width=SPARK_WIDTH),
                checks_24h=len(checks),
                uptime_24h=up / len(checks) if checks else None,
                latency_min=min(latencies, default=None),
                latency_max=max(latencies, default=None),
                slots=[
                    (round(i * SPARK_WIDTH / SLOTS, 2), SLOT_COLORS.get(w, SLOT_COLORS["down"]))
                    for i, w in enumerate(worst)
                    if w
                ],
                undecryptable_keys=undecryptable.get(info["id"], []),
                interval_s=interval,
                stale=bool(reason),
                stale_reason=reason,
                last_error=error,
                last_error_at=error_at,
            )
        )
    return rows
