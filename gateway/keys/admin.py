"""Admin for virtual keys and the routing settings.

A virtual key's plaintext exists only at creation and rotation: it is shown once, in the body
of the response to that POST (never in Django's messages cookie or the session), and only its
SHA-256 and a short prefix are stored. Rotation asks for confirmation first (the change page's
"Rotate key" link, or the changelist action) and may give the old key a grace period.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from gateway.keys.models import RoutingSettings, VirtualKey, generate_key
from gateway.keys.services import virtual_key_rotate
from providers.admin_base import GatewayModelAdmin, secret_once_response

SHOWN_ONCE_ATTR = "gateway_created_virtual_key"

# Grace periods offered for the replaced key (seconds, label).
GRACE_CHOICES = [
    (0, "no grace period (stops at once)"),
    (3600, "1 hour"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
]


def keys_shown_once(request: HttpRequest, shown: list[tuple[VirtualKey, str, str]]) -> HttpResponse:
    """The page showing each (key, plaintext, what happened) once, with copy buttons."""
    return secret_once_response(
        request,
        title="Virtual key shown once",
        secrets=[
            (f"Virtual key “{vkey.name}” {verb}", plaintext, "") for vkey, plaintext, verb in shown
        ],
        back_url=reverse("admin:gateway_virtualkey_changelist"),
    )


def _grace(request: HttpRequest) -> timedelta:
    try:
        seconds = int(request.POST.get("grace") or 0)
    except ValueError:
        seconds = 0
    allowed = {s for s, _ in GRACE_CHOICES}
    return timedelta(seconds=seconds if seconds in allowed else 0)


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
    readonly_fields = ("key_prefix_display", "rotation", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "key_prefix_display", "rotation", "is_enabled", "expires_at")}),
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
        # On the request, not on this admin (one instance serves every request and thread).
        setattr(request, SHOWN_ONCE_ATTR, (obj.pk, plaintext))

    def response_add(
        self, request: HttpRequest, obj: VirtualKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        created = getattr(request, SHOWN_ONCE_ATTR, None)
        if created is None or created[0] != obj.pk:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"Virtual key “{obj.name}” was added.", messages.SUCCESS)
        return keys_shown_once(request, [(obj, created[1], "created")])

    def get_urls(self) -> list[Any]:
        rotate = path(
            "<path:object_id>/rotate/",
            self.admin_site.admin_view(self.rotate_view),
            name="gateway_virtualkey_rotate",
        )
        return [rotate, *super().get_urls()]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what rotating this key will do; the confirmation posts to the action."""
        vkey = self.get_object(request, unquote(object_id))
        if vkey is None or not self.has_change_permission(request, vkey):
            raise PermissionDenied
        return self._rotate_confirmation(request, [vkey])

    def _rotate_confirmation(self, request: HttpRequest, vkeys: list[VirtualKey]) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/gateway/virtualkey/rotate_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "vkeys": vkeys,
                "grace_choices": GRACE_CHOICES,
                "action_url": reverse("admin:gateway_virtualkey_changelist"),
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Rotate keys of selected virtual keys", permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse:
        if request.POST.get("confirm") != "yes":
            return self._rotate_confirmation(request, list(queryset))
        grace = _grace(request)
        with transaction.atomic():
            rotated = [(vkey, virtual_key_rotate(vkey=vkey, grace=grace)) for vkey in queryset]
            for vkey, _plaintext in rotated:
                self.log_change(request, vkey, "Rotated the key.")
        if grace:
            until = timezone.now() + grace
            verb = f"rotated; the old key keeps working until {until:%Y-%m-%d %H:%M} UTC"
        else:
            verb = "rotated; the old key stops working"
        return keys_shown_once(request, [(vkey, plaintext, verb) for vkey, plaintext in rotated])

    @admin.display(description="rotation")
    def rotation(self, obj: VirtualKey) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:gateway_virtualkey_rotate", args=[obj.pk])
        grace = ""
        if obj.previous_key_active and obj.previous_key_expires_at is not None:
            grace = (
                f" The previous key works until {obj.previous_key_expires_at:%Y-%m-%d %H:%M} UTC."
            )
        return format_html('<a class="button" href="{}">Rotate key…</a>{}', url, grace)

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
