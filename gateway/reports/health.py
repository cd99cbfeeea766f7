"""Read side of the provider health page: /health's per-instance report plus 24 h history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.monitoring.health import health_report
from gateway.reports.charts import sparkline_points
from providers.models import HealthCheck
from providers.selectors import provider_keys_undecryptable

SLOTS = 48  # half-hour buckets over 24 h
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
    slots: list[tuple[float, str]]  # (x, colour) of each half hour's worst probe
    undecryptable_keys: list[str]  # keys left out of routing: no configured key decrypts them


def _dt(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def health_rows() -> list[HealthRow]:
    """One row per provider instance, ordered by name."""
    report = health_report()
    now = timezone.now()
    since = now - timedelta(hours=24)
    history: dict[int, list[tuple[datetime, float | None, str]]] = {}
    for pid, at, latency, status in (
        HealthCheck.objects.filter(checked_at__gte=since)
        .order_by("checked_at")
        .values_list("provider_id", "checked_at", "latency_ms", "status")
    ):
        history.setdefault(pid, []).append((at, latency, status))
    undecryptable = provider_keys_undecryptable()
    rows = []
    for info in report["providers"].values():
        checks = history.get(info["id"], [])
        latency_sum = [0.0] * SLOTS
        latency_n = [0] * SLOTS
        worst = [""] * SLOTS
        for at, latency, status in checks:
            slot = min(int((at - since).total_seconds() // 1800), SLOTS - 1)
            if latency is not None:
                latency_sum[slot] += latency
                latency_n[slot] += 1
            if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(worst[slot], -1):
                worst[slot] = status
        series = [latency_sum[i] / latency_n[i] if latency_n[i] else None for i in range(SLOTS)]
        up = sum(1 for _, _, status in checks if status != "down")
        latencies = [latency for _, latency, _ in checks if latency is not None]
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
                last_checked=_dt(info["last_checked"]),
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
            )
        )
    return rows
