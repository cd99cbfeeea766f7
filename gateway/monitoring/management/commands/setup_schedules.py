"""``manage.py setup_schedules``: create the gateway's periodic Celery tasks (idempotent).

The schedule lives in the database (django-celery-beat) so admins can see and change it; this
command is the one place that says what it is by default. Existing entries keep the interval
an admin may have set; only missing ones are created (``--reset`` restores the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    # A run queued but not started by then is dropped: the next tick does the same work, and
    # a backlog of identical drains after a worker outage helps nobody.
    expire_seconds: int
    description: str


SCHEDULES = [
    Schedule(
        name="usage: drain stream into records",
        task="gateway.usage_drain",
        every_seconds=2,
        expire_seconds=10,
        description="Records usage events from the Redis stream (and orphan spools) in bulk.",
    ),
    Schedule(
        name="budgets: check spend and alert",
        task="gateway.budgets_check",
        every_seconds=60,
        expire_seconds=120,
        description="Computes per-key spend, publishes the over-budget set, fires alerts.",
    ),
    # Health checks (providers/tasks.py). One dispatcher, not one entry per instance: it
    # probes each enabled instance whose own health_check_interval has elapsed.
    Schedule(
        name="health: probe due provider instances",
        task="providers.health_checks_dispatch",
        every_seconds=10,
        expire_seconds=10,
        description="Queues a probe of each enabled instance whose own interval has elapsed.",
    ),
    Schedule(
        name="health: purge old checks",
        task="providers.health_checks_purge",
        every_seconds=3600,
        expire_seconds=600,
        description="Deletes health checks older than HEALTH_CHECK_RETENTION_DAYS.",
    ),
    # Reports (gateway/reports/tasks.py): daily usage rollups for cost reports.
    Schedule(
        name="reports: roll up daily usage",
        task="reports.rollups_update",
        every_seconds=600,
        expire_seconds=600,
        description="Rebuilds the daily usage rollups of complete days whose records changed.",
    ),
    Schedule(
        name="reports: usage partitions and retention",
        task="reports.usage_partitions_maintain",
        every_seconds=3600,
        expire_seconds=3000,
        description=(
            "Creates the usage table's months ahead (PostgreSQL) and drops raw usage older than "
            "USAGE_RETENTION_DAYS once rolled up."
        ),
    ),
]


class Command(BaseCommand):
    help = "Create the periodic tasks (usage drain every 2 s, budget check every 60 s)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Restore default intervals on existing entries."
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for schedule in SCHEDULES:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.every_seconds, period=IntervalSchedule.SECONDS
            )
            task, created = PeriodicTask.objects.get_or_create(
                name=schedule.name,
                defaults={
                    "task": schedule.task,
                    "interval": interval,
                    "expire_seconds": schedule.expire_seconds,
                    "description": schedule.description,
                },
            )
            if created:
                self.stdout.write(f"created {schedule.name!r} every {schedule.every_seconds}s")
                continue
            changed = task.task != schedule.task
            task.task = schedule.task
            if options["reset"]:
                task.interval = interval
                task.crontab = None
                task.expire_seconds = schedule.expire_seconds
                task.enabled = True
                changed = True
            if changed:
                task.save()
                self.stdout.write(f"updated {schedule.name!r}")
            else:
                self.stdout.write(f"kept {schedule.name!r} as configured")
