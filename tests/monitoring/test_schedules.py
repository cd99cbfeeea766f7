"""The periodic schedule: created by one command, idempotent, admins' changes kept."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from gateway.celery import app

pytestmark = pytest.mark.django_db


def test_setup_schedules_is_idempotent_and_keeps_admin_changes() -> None:
    call_command("setup_schedules", stdout=io.StringIO())
    call_command("setup_schedules", stdout=io.StringIO())
    tasks = {t.task: t for t in PeriodicTask.objects.all()}
    assert set(tasks) == {
        "gateway.usage_drain",
        "gateway.budgets_check",
        "providers.health_checks_dispatch",
        "providers.health_checks_purge",
        "reports.rollups_update",  # daily usage rollups for the cost reports
        "reports.usage_partitions_maintain",  # usage months ahead and retention
    }
    assert tasks["gateway.usage_drain"].interval.every == 2
    assert tasks["gateway.budgets_check"].interval.every == 60

    slower, _ = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.SECONDS)
    drain = tasks["gateway.usage_drain"]
    drain.interval = slower
    drain.save()
    call_command("setup_schedules", stdout=io.StringIO())
    drain.refresh_from_db()
    assert drain.interval.every == 5  # an admin's choice survives a re-run
    call_command("setup_schedules", "--reset", stdout=io.StringIO())
    drain.refresh_from_db()
    assert drain.interval.every == 2


def test_celery_is_configured_for_at_least_once_delivery() -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    app.loader.import_default_modules()
    assert {"gateway.usage_drain", "gateway.budgets_check"} <= set(app.tasks)
