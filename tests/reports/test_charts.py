"""Chart geometry and number formatting (no database)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from gateway.reports.charts import _nice_step, sparkline_points, stacked_cost_chart
from gateway.reports.selectors import CostReport, ReportFilters, ReportRow
from gateway.reports.templatetags.ops import compact, ms, pct, share_of, usd


def _report(groups: int, days: int = 3) -> CostReport:
    start = date(2026, 1, 1)
    rows = [
        ReportRow(key=str(i), label=f"g{i}", requests=1, cost=Decimal(groups - i))
        for i in range(groups)
    ]
    series = {r.key: [r.cost / days] * days for r in rows}
    return CostReport(
        filters=ReportFilters(start=start, end=start + timedelta(days=days - 1)),
        group_by="provider",
        rows=rows,
        total=ReportRow(key="total", label="Total"),
        days=[start + timedelta(days=i) for i in range(days)],
        series=series,
    )


def test_stacked_chart_keeps_top_groups_and_folds_the_rest() -> None:
    chart = stacked_cost_chart(_report(9))
    assert not chart.empty
    assert [item.label for item in chart.legend][-1] == "Other (3)"
    assert len(chart.legend) == 7
    assert len(chart.segments) == 3 * 7  # 6 groups + Other, per day
    # Stacks never exceed the plot: the top tick is at or above the tallest day.
    assert min(s.y for s in chart.segments) >= chart.ticks[-1].y - 0.01
    assert [t.label for t in chart.ticks] == ["$0", "$5", "$10", "$15", "$20"]


def test_empty_report_draws_nothing() -> None:
    assert stacked_cost_chart(_report(0)).empty


def test_axis_steps_are_round() -> None:
    assert [_nice_step(v) for v in (0.3, 0.6, 1.1, 2.2, 4.9, 30)] == [0.5, 1, 2, 2.5, 5, 50]


def test_sparkline_needs_two_points_and_skips_gaps() -> None:
    assert sparkline_points([None, 5.0]) == ""
    points = sparkline_points([10.0, None, 20.0], width=100, height=30)
    assert points.split() == ["0.0,15.0", "100.0,2.0"]


def test_formatting() -> None:
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(Decimal("0.00421")) == "$0.0042"
    assert usd(None) == "\u2013"
    assert compact(1_250_000) == "1.2M" and compact(999) == "999"
    assert pct(0.0512) == "5.1%" and ms(512.4) == "512 ms" and ms(12_500) == "12.50 s"
    assert share_of(Decimal(1), Decimal(4)) == 25.0 and share_of(1, 0) == 0.0
