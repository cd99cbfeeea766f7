"""Admin for usage records: read-only, since usage is money."""

from __future__ import annotations

from django.contrib import admin

from gateway.usage.models import UsageRecord
from providers.admin_base import ReadOnlyAdminMixin


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: usage is money; it is written by the recorder, never by hand."""

    list_display = (
        "created_at",
        "request_id",
        "virtual_key",
        "model_alias",
        "provider",
        "status_code",
        "prompt_tokens",
        "completion_tokens",
        "cost_display",
        "latency_ms",
    )
    list_filter = ("provider", "endpoint", "stream", "status_code")
    list_select_related = ("virtual_key", "provider")
    search_fields = ("request_id", "model_alias")
    # A COUNT(*) over every usage record on each page load is slow on a busy gateway.
    show_full_result_count = False

    @admin.display(description="cost (USD)", ordering="cost")
    def cost_display(self, obj: UsageRecord) -> str:
        return "unpriced" if obj.cost is None else f"{obj.cost:.6f}"
