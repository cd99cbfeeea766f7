"""Admin for rollup days (read-only: the rollup task writes them)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from gateway.reports.models import RollupDay


@admin.register(RollupDay)
class RollupDayAdmin(admin.ModelAdmin):
    list_display = ["day", "source_count", "built_at"]
    readonly_fields = ["day", "source_count", "source_max_id", "built_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
