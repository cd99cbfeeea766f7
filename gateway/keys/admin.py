"""Admin for virtual keys and the routing settings.

A virtual key's plaintext exists only at creation and rotation: it is shown once, in the body
of the response to that POST (never in Django's messages cookie or the session), and only its
SHA-256 and a short prefix are stored. Rotation asks for confirmation first (the change page's
"Rotate key" link, or the changelist action) and may give the old key a grace period.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, DecimalField, OuterRef, QuerySet, Subquery, Sum, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from gateway.keys.models import BudgetPeriod, RoutingSettings, VirtualKey, generate_key
from gateway.keys.services import virtual_key_rotate
from gateway.usage.budgets import budget_period_start
from gateway.usage.models import UsageRecord
from mappings.models import ModelProviderMapping
from providers.admin_base import GatewayModelAdmin, secret_once_response

SHOWN_ONCE_ATTR = "gateway_created_virtual_key"

# Grace periods offered for the replaced key (seconds, label).
GRACE_CHOICES = [
    (0, "no grace period (stops at once)"),
    (3600, "1 hour"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
]

# The cost report's preset for each budget period (the key's spend this period, itemised).
PERIOD_PRESETS: dict[str, str] = {
    BudgetPeriod.DAILY: "today",
    BudgetPeriod.MONTHLY: "this_month",
}


def known_aliases() -> list[str]:
    """Every alias a mapping serves (enabled or not), sorted."""
    return list(
        ModelProviderMapping.objects.order_by("model_alias")
        .values_list("model_alias", flat=True)
        .distinct()
    )


class VirtualKeyForm(forms.ModelForm):
    """``allowed_models`` picked from the existing aliases, stored as the same JSON list.

    An alias no mapping serves is refused, with its name; one already stored on the key stays
    selectable (marked), so a key whose alias was unmapped can still be edited.
    """

    allowed_models = forms.MultipleChoiceField(
        required=False,
        label="Allowed models",
        widget=FilteredSelectMultiple("aliases", is_stacked=False),
        help_text="Aliases this key may call. None selected: every alias.",
    )

    class Meta:
        model = VirtualKey
        fields = [
            "name",
            "is_enabled",
            "expires_at",
            "allowed_models",
            "requests_per_minute",
            "tokens_per_minute",
            "budget_amount",
            "budget_period",
            "budget_alert_threshold",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        aliases = known_aliases()
        stored = [a for a in (self.instance.allowed_models or []) if a not in aliases]
        field = self.fields["allowed_models"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(a, a) for a in aliases] + [(a, f"{a} (no mapping)") for a in stored]
        field.error_messages["invalid_choice"] = (
            "“%(value)s” is not an alias any mapping serves. Add the mapping first, or pick "
            "one of the listed aliases."
        )
        self.initial["allowed_models"] = list(self.instance.allowed_models or [])

    def clean_allowed_models(self) -> list[str]:
        # The stored format: a JSON list of alias names, in the order they were chosen.
        return [str(a) for a in self.cleaned_data.get("allowed_models") or []]


def spend_this_period() -> Case:
    """The key's spend since its budget period started, as one annotation (three subqueries,
    one per period kind, chosen by the row's ``budget_period``: still a single SQL query)."""
    now = timezone.now()

    def since(start: datetime) -> Subquery:
        rows = (
            UsageRecord.objects.filter(virtual_key=OuterRef("pk"), created_at__gte=start)
            .order_by()
            .values("virtual_key")
            .annotate(total=Sum("cost"))
            .values("total")
        )
        return Subquery(rows, output_field=DecimalField(max_digits=20, decimal_places=10))

    return Case(
        *[
            When(budget_period=period, then=since(budget_period_start(period=period, now=now)))
            for period in BudgetPeriod.values
        ],
        default=Value(None),
        output_field=DecimalField(max_digits=20, decimal_places=10),
    )


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
    form = VirtualKeyForm
    list_display = (
        "name",
        "key_prefix_display",
        "is_enabled",
        "allowed_models_display",
        "budget_display",
        "spend_display",
        "last_used",
        "usage_links",
        "expires_at_utc",
    )
    list_filter = ("is_enabled", "budget_period")
    search_fields = ("name", "key_prefix")
    actions = ["rotate_keys", "enable_selected", "disable_selected"]
    readonly_fields = (
        "key_prefix_display",
        "rotation",
        "created_at",
        "updated_at",
        "spend_display",
        "last_used",
        "usage_links",
    )
    fieldsets = (
        (None, {"fields": ("name", "key_prefix_display", "rotation", "is_enabled", "expires_at")}),
        ("Access", {"fields": ("allowed_models",)}),
        ("Limits", {"fields": (("requests_per_minute", "tokens_per_minute"),)}),
        (
            "Budget",
            {"fields": ("budget_amount", "budget_period", "budget_alert_threshold")},
        ),
        ("Usage", {"fields": ("spend_display", "last_used", "usage_links")}),
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[VirtualKey]:
        # Spend this period and last use are annotations of the list's one query.
        last = UsageRecord.objects.filter(virtual_key=OuterRef("pk")).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                _spend=spend_this_period(),
                _last_used=Subquery(last.values("created_at")[:1]),
            )
        )

    @admin.display(description="spend this period", ordering="_spend")
    def spend_display(self, obj: VirtualKey) -> str:
        if not obj.pk:
            return "—"
        spend = getattr(obj, "_spend", None) or Decimal(0)
        text = f"${spend:,.2f}"
        if obj.budget_amount is None or obj.budget_amount <= 0:
            return text
        share = min(spend / obj.budget_amount, Decimal(1))
        alert = obj.budget_amount * obj.budget_alert_threshold
        return format_html(
            '<span style="white-space:nowrap">{} of ${} ({}%)</span><br>'
            '<meter class="gw-budget" min="0" max="{}" value="{}" low="{}" high="{}" '
            'optimum="0" style="width:8em" aria-label="budget used">{}%</meter>',
            text,
            f"{obj.budget_amount:,.2f}",
            f"{share * 100:.0f}",
            f"{obj.budget_amount:.2f}",
            f"{min(spend, obj.budget_amount):.2f}",
            f"{alert:.2f}",
            f"{alert:.2f}",
            f"{share * 100:.0f}",
        )

    @admin.display(description="expires (UTC)", ordering="expires_at")
    def expires_at_utc(self, obj: VirtualKey) -> str:
        if obj.expires_at is None:
            return "never"
        return obj.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    @admin.display(description="last used (UTC)", ordering="_last_used")
    def last_used(self, obj: VirtualKey) -> str:
        value: datetime | None = getattr(obj, "_last_used", None)
        if value is None:
            return "never"
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    @admin.display(description="usage")
    def usage_links(self, obj: VirtualKey) -> str:
        if not obj.pk:
            return "—"
        costs = urlencode(
            {
                "virtual_key_id": obj.pk,
                "preset": PERIOD_PRESETS.get(obj.budget_period, "30d"),
                "group_by": "alias",
            }
        )
        return format_html(
            '<a href="{}?{}">costs</a> · <a href="/ops/requests/?{}">requests</a>',
            reverse("ops-costs"),
            costs,
            urlencode({"key": obj.pk}),
        )

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
