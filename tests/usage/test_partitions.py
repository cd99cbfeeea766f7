"""The usage table at scale: monthly partitions on PostgreSQL, exact idempotency across them,
months created ahead, and a retention that never removes a record that is not rolled up.

Partition tests need PostgreSQL (skipped on SQLite with the reason, failed under CI); the
retention tests run on both (SQLite deletes rows, PostgreSQL drops months).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Sum

from gateway.env import envretention
from gateway.reports.models import DailyUsageRollup, RollupDay
from gateway.reports.retention import usage_retention_apply
from gateway.usage.models import UsageRecord
from gateway.usage.partitions import (
    DEFAULT_PARTITION,
    is_partitioned,
    month_start,
    partition_create,
    partition_name,
    partitions_ensure,
    partitions_list,
)
from gateway.usage.recorder import usage_events_record
from tests.usage.conftest import event

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def home(request_id: str) -> str:
    """The partition a record lives in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM gateway_usagerecord WHERE request_id = %s",
            [request_id],
        )
        return str(cursor.fetchone()[0])


def month_exists(when: datetime) -> None:
    """On PostgreSQL, the month partition of ``when`` (tests write to months long past)."""
    if is_partitioned():
        start = month_start(when.date())
        if partition_name(start) not in {p.name for p in partitions_list()}:
            partition_create(start=start)


def record(**fields: Any) -> dict[str, Any]:
    payload = event(request_id="gw-" + uuid.uuid4().hex, **fields).to_dict()
    usage_events_record(events=[payload])
    return payload


def test_the_table_is_partitioned_by_month_with_months_ahead(require_postgres: None) -> None:
    assert is_partitioned()
    names = {p.name for p in partitions_list()}
    this_month = month_start(datetime.now(tz=UTC).date())
    for k in range(4):
        start = datetime(
            this_month.year + (this_month.month - 1 + k) // 12,
            (this_month.month - 1 + k) % 12 + 1,
            1,
            tzinfo=UTC,
        )
        assert partition_name(start) in names


def test_a_redelivered_event_is_recorded_once_even_at_a_month_boundary(
    require_postgres: None,
) -> None:
    month_exists(datetime(2026, 11, 30, tzinfo=UTC))
    month_exists(datetime(2026, 12, 1, tzinfo=UTC))
    last_instant = event(request_id="gw-edge", created_at=at(2026, 11, 30, 23, 59, 59, 999999))
    first_instant = event(request_id="gw-next", created_at=at(2026, 12, 1))
    assert usage_events_record(events=[last_instant.to_dict(), first_instant.to_dict()]) == 2
    # The drain redelivers (a crash before the acknowledgement): separately, and mixed.
    assert usage_events_record(events=[last_instant.to_dict()]) == 0
    assert usage_events_record(events=[first_instant.to_dict(), last_instant.to_dict()]) == 0
    assert UsageRecord.objects.filter(request_id__in=["gw-edge", "gw-next"]).count() == 2
    assert home("gw-edge") == "gateway_usagerecord_p202611"
    assert home("gw-next") == "gateway_usagerecord_p202612"


def test_a_far_future_record_is_kept_then_moves_into_its_month(require_postgres: None) -> None:
    stray = record(created_at=at(2031, 1, 5, 12))  # a clock years ahead
    assert home(stray["request_id"]) == DEFAULT_PARTITION
    assert usage_events_record(events=[stray]) == 0  # still exactly once

    created = partitions_ensure(ahead=1, today=date(2031, 1, 20))
    assert created == ["gateway_usagerecord_p203101", "gateway_usagerecord_p203102"]
    assert home(stray["request_id"]) == "gateway_usagerecord_p203101"
    assert UsageRecord.objects.filter(request_id=stray["request_id"]).count() == 1
    assert partitions_ensure(ahead=1, today=date(2031, 1, 20)) == []  # idempotent


def test_ids_stay_unique_and_increasing_across_partitions(require_postgres: None) -> None:
    month_exists(datetime(2026, 5, 1, tzinfo=UTC))
    old = record(created_at=at(2026, 5, 1))
    new = record(created_at=datetime.now(tz=UTC).timestamp())
    ids = [UsageRecord.objects.get(request_id=r["request_id"]).pk for r in (old, new)]
    assert ids[1] > ids[0]
    assert UsageRecord.objects.get(pk=ids[0]).request_id == old["request_id"]


def old_and_recent_usage() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records of two days in January 2026 and of two days in March."""
    for month in (1, 2, 3):
        month_exists(datetime(2026, month, 1, tzinfo=UTC))
    old = [record(created_at=at(2026, 1, d, 10), prompt_tokens=d) for d in (10, 10, 11)]
    recent = [record(created_at=at(2026, 3, d, 10)) for d in (1, 2)]
    return old, recent


def test_retention_removes_old_usage_only_after_rolling_it_up() -> None:
    old, recent = old_and_recent_usage()
    # Day 10 was rolled up before day 10's third record arrived (a late, spooled event) and
    # day 11 never was: both must be rolled up from all their records before they go.
    RollupDay.objects.create(day=date(2026, 1, 10), source_count=1, source_max_id=None)

    result = usage_retention_apply(days=30, today=date(2026, 3, 10))

    assert not UsageRecord.objects.filter(request_id__in=[r["request_id"] for r in old]).exists()
    assert UsageRecord.objects.filter(request_id__in=[r["request_id"] for r in recent]).count() == 2
    assert result.rolled_up == [date(2026, 1, 10), date(2026, 1, 11)]
    january = DailyUsageRollup.objects.filter(day__month=1, day__year=2026)
    assert january.aggregate(n=Sum("requests"))["n"] == 3
    assert january.aggregate(t=Sum("prompt_tokens"))["t"] == 10 + 10 + 11
    if is_partitioned():
        assert result.dropped_partitions == ["gateway_usagerecord_p202601"]
        assert "gateway_usagerecord_p202601" not in {p.name for p in partitions_list()}
    else:
        assert result.deleted_rows == 3


def test_retention_keeps_a_month_that_is_not_entirely_past_the_cutoff() -> None:
    old, recent = old_and_recent_usage()
    # Cutoff 2026-01-20: January still has days inside the retention, so nothing of it goes
    # on PostgreSQL (whole months only); on SQLite the days before the cutoff go.
    result = usage_retention_apply(days=30, today=date(2026, 2, 19))
    left = UsageRecord.objects.filter(request_id__in=[r["request_id"] for r in old + recent])
    if is_partitioned():
        assert result.dropped_partitions == [] and left.count() == 5
    else:
        assert result.deleted_rows == 3 and left.count() == 2


def test_retention_off_keeps_everything() -> None:
    old, recent = old_and_recent_usage()
    result = usage_retention_apply(days=0, today=date(2030, 1, 1))
    assert result.cutoff is None
    assert UsageRecord.objects.count() == len(old) + len(recent)


def test_a_retention_inside_the_rollup_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("3", "8", "-1"):
        monkeypatch.setenv("USAGE_RETENTION_DAYS", bad)
        with pytest.raises(ImproperlyConfigured, match="USAGE_RETENTION_DAYS"):
            envretention("USAGE_RETENTION_DAYS", window=7)
    for good in ("0", "9", "400"):
        monkeypatch.setenv("USAGE_RETENTION_DAYS", good)
        assert envretention("USAGE_RETENTION_DAYS", window=7) == int(good)


def test_the_gateway_does_not_start_with_a_retention_inside_the_rollup_window() -> None:
    env = {**os.environ, "DEBUG": "1", "USAGE_RETENTION_DAYS": "5"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "USAGE_RETENTION_DAYS=5" in done.stderr and "rollups for 7 days" in done.stderr


def test_the_maintenance_task_creates_months_ahead(require_postgres: None, settings: Any) -> None:
    from gateway.reports.tasks import usage_partitions_maintain_task

    settings.USAGE_PARTITIONS_AHEAD = 6
    out = usage_partitions_maintain_task()
    this_month = month_start(datetime.now(tz=UTC).date())
    sixth = this_month + timedelta(days=31 * 6)
    assert partition_name(month_start(sixth.date())) in {p.name for p in partitions_list()}
    assert out["dropped"] == []
