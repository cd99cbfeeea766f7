"""Report numbers: every grouping sums to the raw records; rollups equal the raw computation;
unpriced usage is kept apart from cost (never $0)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.reports.models import DailyUsageRollup, RollupDay
from gateway.reports.selectors import (
    GROUPINGS,
    ReportFilters,
    cost_report,
    preset_range,
    utc_today,
)
from gateway.reports.services import rollups_update
from gateway.usage.models import UsageRecord
from tests.reports.helpers import python_sums, seed_usage

pytestmark = pytest.mark.django_db

DAYS = 5


def _range() -> ReportFilters:
    today = utc_today()
    return ReportFilters(start=today - timedelta(days=DAYS - 1), end=today)


def _as_sums(report) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {
        r.key: {
            "requests": r.requests,
            "errors": r.errors,
            "prompt": r.prompt_tokens,
            "completion": r.completion_tokens,
            "cost": r.cost_rounded,
            "unpriced": r.unpriced_requests,
        }
        for r in report.rows
    }


@pytest.mark.parametrize("group_by", list(GROUPINGS))
@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rollups"])
def test_each_grouping_sums_to_the_raw_records(group_by: str, rolled_up: bool) -> None:
    world = seed_usage(days=DAYS)
    if rolled_up:
        assert len(rollups_update(days_back=DAYS - 1)) == DAYS - 1  # today stays raw
    filters = _range()
    report = cost_report(filters=filters, group_by=group_by)
    assert report.rollup_until == (utc_today() if rolled_up else filters.start)
    expected = python_sums(world.records, group_by, filters.start, filters.end)
    assert _as_sums(report) == expected
    # Totals too, and a narrower range (rollups for the past part, raw for today).
    assert report.total.requests == len(world.records)
    narrow = ReportFilters(start=utc_today() - timedelta(days=2), end=utc_today())
    assert _as_sums(cost_report(filters=narrow, group_by=group_by)) == python_sums(
        world.records, group_by, narrow.start, narrow.end
    )


@pytest.mark.parametrize("group_by", list(GROUPINGS))
def test_rollup_equals_raw_computation(group_by: str) -> None:
    seed_usage(days=DAYS, per_day=20, seed=11)
    filters = _range()
    raw = cost_report(filters=filters, group_by=group_by, use_rollups=False)
    rollups_update(days_back=DAYS)
    assert DailyUsageRollup.objects.exists()
    rolled = cost_report(filters=filters, group_by=group_by)
    assert rolled.rollup_until == utc_today()
    assert [r.as_dict() for r in rolled.rows] == [r.as_dict() for r in raw.rows]
    assert rolled.total.as_dict() == raw.total.as_dict()
    assert rolled.series.keys() == raw.series.keys()
    for key, values in raw.series.items():
        assert [v.quantize(Decimal("0.000001")) for v in rolled.series[key]] == [
            v.quantize(Decimal("0.000001")) for v in values
        ]


def test_filters_combine() -> None:
    world = seed_usage(days=DAYS)
    rollups_update(days_back=DAYS)
    p1, vkey = world.providers[0], world.vkeys[0]
    filters = ReportFilters(
        start=_range().start, end=_range().end, provider_id=p1.pk, virtual_key_id=vkey.pk
    )
    report = cost_report(filters=filters, group_by="alias")
    wanted = [r for r in world.records if r.provider_id == p1.pk and r.virtual_key_id == vkey.pk]
    assert report.total.requests == len(wanted)
    assert _as_sums(report) == python_sums(wanted, "alias", filters.start, filters.end)
    by_type = cost_report(
        filters=ReportFilters(start=filters.start, end=filters.end, provider_type="anthropic"),
        group_by="provider",
    )
    assert [r.label for r in by_type.rows] == ["claude"]


def test_unpriced_usage_is_separated_never_zero() -> None:
    world = seed_usage(days=1, per_day=0)
    p1 = world.providers[0]
    now = datetime.now(UTC) - timedelta(seconds=5)
    common = {"created_at": now, "endpoint": "chat", "provider": p1, "status_code": 200}
    UsageRecord.objects.create(request_id="a", model_alias="priced", cost=Decimal("1.5"), **common)
    UsageRecord.objects.create(request_id="b", model_alias="priced", cost=None, **common)
    UsageRecord.objects.create(request_id="c", model_alias="free", cost=None, **common)
    UsageRecord.objects.create(request_id="d", model_alias="zero", cost=Decimal(0), **common)
    today = utc_today()
    report = cost_report(filters=ReportFilters(start=today, end=today), group_by="alias")
    rows = {r.key: r for r in report.rows}
    assert rows["priced"].cost_rounded == Decimal("1.5")
    assert rows["priced"].unpriced_requests == 1
    assert rows["priced"].as_dict()["cost"] == "1.500000"
    assert rows["free"].all_unpriced
    assert rows["free"].as_dict()["cost"] is None  # unknown, not $0
    assert rows["zero"].as_dict()["cost"] == "0.000000"  # priced at zero is a real $0
    assert report.total.unpriced_requests == 2
    assert report.total.cost_rounded == Decimal("1.5")


def test_rollups_rebuild_when_a_late_record_lands_and_are_idempotent() -> None:
    world = seed_usage(days=3, per_day=5)
    assert len(rollups_update(days_back=3)) == 3  # the empty day too: it is known empty
    assert rollups_update(days_back=3) == []  # nothing changed: nothing rebuilt
    rows_before = DailyUsageRollup.objects.count()
    yesterday = utc_today() - timedelta(days=1)
    UsageRecord.objects.create(
        request_id="late",
        created_at=datetime(yesterday.year, yesterday.month, yesterday.day, 12, tzinfo=UTC),
        endpoint="chat",
        provider=world.providers[0],
        model_alias="late-alias",
        status_code=200,
        cost=Decimal("2"),
    )
    assert rollups_update(days_back=3) == [yesterday]
    assert DailyUsageRollup.objects.count() == rows_before + 1
    assert RollupDay.objects.get(day=yesterday).source_count == 6
    report = cost_report(filters=ReportFilters(start=yesterday, end=yesterday), group_by="alias")
    assert report.rollup_until == utc_today()
    assert {r.key for r in report.rows} >= {"late-alias"}


def test_presets() -> None:
    today = datetime(2026, 3, 15, tzinfo=UTC).date()
    assert preset_range("today", today=today) == (today, today)
    assert preset_range("7d", today=today) == (today - timedelta(days=6), today)
    assert preset_range("30d", today=today) == (today - timedelta(days=29), today)
    assert preset_range("this_month", today=today) == (today.replace(day=1), today)
    assert preset_range("last_month", today=today) == (
        datetime(2026, 2, 1).date(),
        datetime(2026, 2, 28).date(),
    )
