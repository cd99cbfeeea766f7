"""The rollup task is discovered by the Celery app, scheduled, and does the service's work."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from gateway.celery import app
from gateway.reports.models import RollupDay
from gateway.reports.tasks import rollups_update_task
from tests.reports.helpers import seed_usage

pytestmark = pytest.mark.django_db


def test_rollup_task_registered_scheduled_and_working() -> None:
    app.loader.import_default_modules()
    assert "reports.rollups_update" in app.tasks
    call_command("setup_schedules", stdout=io.StringIO())
    entry = PeriodicTask.objects.get(task="reports.rollups_update")
    assert entry.interval.every == 600
    seed_usage(days=3, per_day=4)
    days = rollups_update_task.delay(days_back=2).get()
    assert len(days) == 2 and RollupDay.objects.count() == 2
    out = io.StringIO()
    call_command("usage_rollup", "--days", "2", stdout=out)
    assert "rolled up 0 day(s)" in out.getvalue()  # nothing changed since


def test_demo_usage_seed_is_idempotent_and_fills_the_reports() -> None:
    import tempfile
    from pathlib import Path

    from gateway.config_io.demo import demo_setup
    from gateway.reports.demo import demo_usage_seed
    from gateway.usage.models import UsageRecord
    from providers.models import HealthCheck

    with tempfile.TemporaryDirectory() as state:
        demo_setup(state_dir=Path(state))
    first = demo_usage_seed()
    assert first.records > 1000 and first.health_checks == 96 and first.days_rolled_up >= 29
    assert not UsageRecord.objects.exclude(virtual_key__name="demo").exists()
    assert UsageRecord.objects.filter(cost__isnull=True).exists()  # unpriced shown as such
    again = demo_usage_seed()
    assert (again.records, again.health_checks) == (0, 0)
    assert HealthCheck.objects.count() == 96
