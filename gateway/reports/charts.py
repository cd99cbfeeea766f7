"""Server-rendered SVG charts: no JavaScript, no external assets.

Functions return plain geometry (numbers and strings) for the templates to draw, so all
escaping stays with the template engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from gateway.reports.selectors import CostReport

PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#94a3b8"]
MAX_SERIES = 6
WIDTH, HEIGHT = 960, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 12, 12, 28


@dataclass
class Segment:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class XLabel:
    x: float
    label: str


@dataclass
class LegendItem:
    label: str
    color: str
    cost: Decimal


@dataclass
class StackedChart:
    width: int = WIDTH
    height: int = HEIGHT
    segments: list[Segment] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    xlabels: list[XLabel] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)
    plot_left: int = PAD_LEFT
    plot_right: int = WIDTH - PAD_RIGHT
    baseline: float = HEIGHT - PAD_BOTTOM
    empty: bool = True
    # (day, total cost) of every day with cost: the chart's text alternative, and what a
    # phone shows instead of bars too narrow to read.
    day_totals: list[tuple[date, Decimal]] = field(default_factory=list)


def _nice_step(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above ``value`` (an axis step)."""
    if value <= 0:
        return 0.25
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * magnitude * (1 + 1e-9):
            return factor * magnitude
    return 10 * magnitude


def _money(value: float, top: float) -> str:
    """Axis label; every label of one axis uses the same number of decimals."""
    step = top / 4
    if top >= 10_000:
        return f"${value / 1000:,.0f}k" if step % 1000 == 0 else f"${value / 1000:,.1f}k"
    if step >= 1 and step == int(step):
        return f"${value:,.0f}"
    if step >= 0.01:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def _day_label(day: date, n_days: int) -> str:
    return day.strftime("%d %b") if n_days <= 45 else day.strftime("%b %d")


def stacked_cost_chart(report: CostReport) -> StackedChart:
    """Cost per day, stacked by the report's groups (the top ones; the rest as "Other")."""
    chart = StackedChart()
    rows = [r for r in report.rows if r.key in report.series]
    if report.group_by == "day":
        top = rows
        rest: list[str] = []
        colors = {r.key: PALETTE[0] for r in rows}
    else:
        top = rows[:MAX_SERIES]
        rest = [r.key for r in rows[MAX_SERIES:]]
        colors = {r.key: PALETTE[i] for i, r in enumerate(top)}
    n = len(report.days)
    stacks: list[list[tuple[str, str, Decimal]]] = [[] for _ in range(n)]
    for row in top:
        for i, cost in enumerate(report.series[row.key]):
            if cost > 0:
                stacks[i].append((row.label, colors[row.key], cost))
    if rest:
        other = [sum((report.series[k][i] for k in rest), Decimal(0)) for i in range(n)]
        for i, cost in enumerate(other):
            if cost > 0:
                stacks[i].append(("Other", PALETTE[-1], cost))
    totals = [float(sum((c for _, _, c in s), Decimal(0))) for s in stacks]
    top_value = 4 * _nice_step(max(totals, default=0.0) / 4)
    plot_h = chart.baseline - PAD_TOP
    plot_w = chart.plot_right - chart.plot_left
    slot = plot_w / max(n, 1)
    bar_w = max(slot * 0.72, 1.0)
    for k in range(5):
        value = top_value * k / 4
        chart.ticks.append(Tick(y=chart.baseline - plot_h * k / 4, label=_money(value, top_value)))
    every = max(1, round(n / 10))
    for i, day in enumerate(report.days):
        x = chart.plot_left + slot * i + (slot - bar_w) / 2
        if i % every == 0:
            chart.xlabels.append(XLabel(x=x + bar_w / 2, label=_day_label(day, n)))
        y = chart.baseline
        for label, color, cost in stacks[i]:
            h = plot_h * float(cost) / top_value
            y -= h
            chart.segments.append(
                Segment(
                    x=round(x, 2),
                    y=round(y, 2),
                    width=round(bar_w, 2),
                    height=round(max(h, 0.5), 2),
                    color=color,
                    title=f"{day:%d %b}: {label} ${cost:,.4f}",
                )
            )
    chart.empty = not chart.segments
    chart.day_totals = [
        (day, sum((c for _, _, c in stacks[i]), Decimal(0)).quantize(Decimal("0.0001")))
        for i, day in enumerate(report.days)
        if stacks[i]
    ]
    chart.legend = [LegendItem(r.label, colors[r.key], r.cost_rounded) for r in top]
    if rest and report.group_by != "day":
        chart.legend.append(
            LegendItem(
                f"Other ({len(rest)})",
                PALETTE[-1],
                sum((r.cost_rounded for r in rows[MAX_SERIES:]), Decimal(0)),
            )
        )
    return chart


def sparkline_points(values: list[float | None], *, width: int = 140, height: int = 30) -> str:
    """SVG polyline points for latencies (oldest first); gaps (no latency) are skipped."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    top = max(known) or 1.0
    step = width / (len(values) - 1)
    points = []
    for i, v in enumerate(values):
        if v is None:
            continue
        points.append(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}")
    return " ".join(points)
