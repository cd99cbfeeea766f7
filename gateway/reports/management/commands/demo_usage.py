"""``manage.py demo_usage``: seed 30 days of sample usage for the demo key (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from gateway.reports.demo import demo_usage_seed


class Command(BaseCommand):
    help = "Seed sample usage and probe history for the offline demo (demo key only)."

    def handle(self, *args: Any, **options: Any) -> None:
        seed = demo_usage_seed()
        self.stdout.write(
            f"Demo usage: {seed.records} new records, {seed.health_checks} new health checks, "
            f"{seed.days_rolled_up} day(s) rolled up"
        )
