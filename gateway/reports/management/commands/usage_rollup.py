"""``manage.py usage_rollup [--days N]``: roll up complete days now (what the task does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from gateway.reports.services import rollups_update


class Command(BaseCommand):
    help = "Rebuild the daily usage rollups of the last N complete days whose records changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        days = rollups_update(days_back=options["days"])
        self.stdout.write(
            f"rolled up {len(days)} day(s)" + (f": {days[0]} .. {days[-1]}" if days else "")
        )
