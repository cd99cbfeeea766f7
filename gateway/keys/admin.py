"""Admin for virtual keys and the routing settings.

A virtual key's plaintext exists only at creation and rotation: it is shown once, in a
message on the next page, and only its SHA-256 and a short prefix are stored.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from gateway.keys.models import RoutingSettings, VirtualKey, generate_key
from gateway.keys.services import virtual_key_rotate
from providers.admin_base import GatewayModelAdmin


def show_key_once(request: HttpRequest, vkey: VirtualKey, plaintext: str, verb: str) -> None:
    """Put the plaintext in a one-shot message: shown on the next page, never again."""
    messages.warning(
        request,
        format_html(
            "Virtual key “{}” {}. Copy it now, it will not be shown again: <code>{}</code>",
            vkey.name,
            verb,
            plaintext,
        ),
    )


@admin.register(VirtualKey)
class VirtualKeyAdmin(GatewayModelAdmin):
    list_display = (
        "name",
        "key_prefix_display",
        "is_enabled",
        "allowed_models_display",
        "budget_display",
        "expires_at",
        "created_at",
    )
    list_filter = ("is_enabled", "budget_period")
    search_fields = ("name", "key_prefix")
    actions = ["rotate_keys", "enable_selected", "disable_selected"]
    readonly_fields = ("key_prefix_display", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "key_prefix_display", "is_enabled", "expires_at")}),
        ("Access", {"fields": ("allowed_models",)}),
        ("Limits", {"fields": (("requests_per_minute", "tokens_per_minute"),)}),
        (
            "Budget",
            {"fields": ("budget_amount", "budget_period", "budget_alert_threshold")},
        ),
        ("Metadata", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return self.fieldsets
        # The key is generated on save; there is nothing to show or type before that.
        return [
            (
                None,
                {
                    "fields": ("name", "is_enabled", "expires_at"),
                    "description": "The key is generated when you save and shown once.",
                },
            ),
            *[fs for fs in self.fieldsets if fs[0] in ("Access", "Limits", "Budget")],
        ]

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        # Same semantics as services.virtual_key_create: a generated key, only its hash kept.
        plaintext = generate_key()
        obj.set_key(plaintext)
        super().save_model(request, obj, form, change)
        show_key_once(request, obj, plaintext, "created")

    @admin.action(description="Rotate keys of selected virtual keys", permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        with transaction.atomic():
            rotated = [(vkey, virtual_key_rotate(vkey=vkey)) for vkey in queryset]
            for vkey, _plaintext in rotated:
                self.log_change(request, vkey, "Rotated the key.")
        for vkey, plaintext in rotated:
            show_key_once(request, vkey, plaintext, "rotated; the old key stops working")

    @admin.display(description="key", ordering="key_prefix")
    def key_prefix_display(self, obj: VirtualKey) -> str:
        return f"{obj.key_prefix}…" if obj.key_prefix else "—"

    @admin.display(description="models")
    def allowed_models_display(self, obj: VirtualKey) -> str:
        return ", ".join(obj.allowed_models) if obj.allowed_models else "all"

    @admin.display(description="budget", ordering="budget_amount")
    def budget_display(self, obj: VirtualKey) -> str:
        if obj.budget_amount is None:
            return "—"
        return f"${obj.budget_amount} {obj.get_budget_period_display().lower()}"


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(admin.ModelAdmin):
    """The single routing-settings row: no list, no second row, no delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not RoutingSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = RoutingSettings.objects.first()
        if obj is None:
            return HttpResponseRedirect(reverse("admin:gateway_routingsettings_add"))
        return HttpResponseRedirect(reverse("admin:gateway_routingsettings_change", args=[obj.pk]))
