"""Admin for model alias mappings and their prices.

A price already in effect is history (usage was priced with it): its fields are shown
disabled here, a post that still carries them is refused with a message, and the model's
``clean`` refuses the change as a last line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string

from mappings.admin_catalogue import CataloguePricesMixin
from mappings.models import (
    AliasRoutingPolicy,
    ModelPrice,
    ModelProviderMapping,
    TierAlias,
    TierPattern,
)
from mappings.services import PriceLocked, model_price_in_effect
from providers.admin_base import GatewayModelAdmin

CAPABILITIES = (
    ("supports_chat", "chat"),
    ("supports_vision", "vision"),
    ("supports_tools", "tools"),
    ("supports_streaming", "streaming"),
    ("supports_embeddings", "embeddings"),
    ("supports_json_mode", "json"),
    ("supports_reasoning", "reasoning"),
)
PRICE_FIELDS = ("input_per_million", "output_per_million", "cached_input_per_million")
LOCKED_HELP = (
    "This price is in effect and locked: prices never change history. To change the price, "
    "add a new price with a later “effective from”."
)
STALE_HELP = (
    "This price took effect after the page was loaded and can no longer change: nothing was "
    "saved. Reload the page; to change the price, add a new price with a later “effective from”."
)


class CapabilitySelect(forms.NullBooleanSelect):
    """Yes / No / Undeclared, with undeclared spelled out (Django says "Unknown")."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.choices = [
            ("unknown", "Undeclared (not checked)"),
            ("true", "Yes"),
            ("false", "No"),
        ]


def capability_summary(obj: ModelProviderMapping) -> str:
    """``chat, tools; not: embeddings``: the declared capabilities (undeclared are left out)."""
    yes = [label for field, label in CAPABILITIES if getattr(obj, field) is True]
    no = [label for field, label in CAPABILITIES if getattr(obj, field) is False]
    text = ", ".join(yes)
    if no:
        text = f"{text}; not: {', '.join(no)}" if text else f"not: {', '.join(no)}"
    return text or "undeclared"


def price_in_effect(price: ModelPrice) -> bool:
    """True for a saved price whose ``effective_from`` has passed (no longer editable)."""
    return model_price_in_effect(price=price)


def price_badge(price: ModelPrice) -> str:
    """A one-word status for lists (the full sentence is on the price's form)."""
    if not price.pk:
        return "—"
    locked = price_in_effect(price)
    return format_html(
        '<span class="gw-price-status" title="{}" style="white-space:nowrap">{}</span>',
        LOCKED_HELP if locked else "Editable until it takes effect.",
        "in effect (locked)" if locked else "scheduled",
    )


def per_million(value: Decimal | None) -> str:
    """``2.5`` rather than ``2.500000``; ``—`` for no price."""
    if value is None:
        return "—"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def price_status(price: ModelPrice) -> str:
    if not price.pk:
        return "—"
    if price_in_effect(price):
        return "in effect (locked)"
    return "scheduled (editable until it takes effect)"


class AliasListFilter(admin.SimpleListFilter):
    """Filter by one alias: the set of instances (and their order) that serve it."""

    title = "alias"
    parameter_name = "alias"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        aliases = (
            ModelProviderMapping.objects.order_by("model_alias")
            .values_list("model_alias", flat=True)
            .distinct()
        )
        return [(a, a) for a in aliases]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ModelProviderMapping]
    ) -> QuerySet[ModelProviderMapping]:
        if self.value():
            return queryset.filter(model_alias=self.value())
        return queryset


class ModelPriceForm(forms.ModelForm):
    """A price; once in effect its fields are disabled (shown, never taken from the post).

    A form rendered while the price was still scheduled and posted after it took effect
    carries the now-locked fields: that is refused with a message instead of being dropped
    silently.
    """

    LOCKED: tuple[str, ...] = (
        "mapping",
        "provider",
        "provider_model_id",
        *PRICE_FIELDS,
        "effective_from",
    )

    class Meta:
        model = ModelPrice
        fields = ["mapping", "provider", "provider_model_id", *PRICE_FIELDS, "effective_from"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locked = price_in_effect(self.instance)
        if self.locked:
            for name in self.LOCKED:
                if name in self.fields:
                    self.fields[name].disabled = True
            self.fields["effective_from"].help_text = LOCKED_HELP

    def _posted(self, name: str) -> bool:
        # A split date/time field posts name_0 and name_1.
        key = self.add_prefix(name)
        return any(k == key or re.fullmatch(re.escape(key) + r"_\d+", k) for k in self.data)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.locked:
            if any(self._posted(n) for n in self.LOCKED if n in self.fields):
                self.add_error("effective_from", STALE_HELP)
            # A disabled field cleans its rendered value, and the date/time widget drops
            # microseconds: keep the stored values exactly, so the model sees no change.
            for name in self.LOCKED:
                if name in cleaned:
                    cleaned[name] = getattr(self.instance, name)
        return cleaned


class ModelPriceInlineForm(ModelPriceForm):
    """A price row under its mapping (the mapping is the inline's parent)."""

    LOCKED = (*PRICE_FIELDS, "effective_from")

    class Meta:
        model = ModelPrice
        fields = [*PRICE_FIELDS, "effective_from"]

    def full_clean(self) -> None:
        super().full_clean()
        # On "add mapping" the mapping has no id yet while its inline prices validate, so the
        # model's "give a mapping" rule fires although the formset sets the mapping on save.
        mapping = getattr(self.instance, "mapping", None) if self.is_bound else None
        if mapping is not None and mapping.pk is None:
            self.errors.pop("mapping", None)


class ModelPriceInlineFormSet(forms.BaseInlineFormSet):
    """Refuses deleting a price in effect from the mapping's page (price history survives)."""

    def clean(self) -> None:
        super().clean()
        for form in self.deleted_forms:
            if form.instance.pk and price_in_effect(form.instance):
                raise forms.ValidationError(PriceLocked(form.instance).sentence)


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    fk_name = "mapping"
    form = ModelPriceInlineForm
    formset = ModelPriceInlineFormSet
    extra = 0
    fields = (*PRICE_FIELDS, "effective_from", "status")
    readonly_fields = ("status",)
    verbose_name = "price"
    verbose_name_plural = "prices (per million tokens, USD)"

    @admin.display(description="status")
    def status(self, obj: ModelPrice) -> str:
        return price_badge(obj)


@admin.register(ModelProviderMapping)
class ModelProviderMappingAdmin(CataloguePricesMixin, GatewayModelAdmin):
    inlines = [ModelPriceInline]
    list_display = (
        "model_alias",
        "provider_link",
        "provider_model_id",
        "priority",
        "weight",
        "is_enabled",
        "capabilities",
    )
    list_filter = (AliasListFilter, "provider", "is_enabled")
    list_select_related = ("provider",)
    search_fields = ("model_alias",)
    actions = ["enable_selected", "disable_selected", "add_catalogue_prices"]
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "model_alias",
                    "provider",
                    "provider_model_id",
                    "is_enabled",
                    ("priority", "weight"),
                )
            },
        ),
        ("Price", {"fields": ("catalogue_price_link",)}),
        (
            "Capabilities",
            {
                "fields": tuple(f for f, _ in CAPABILITIES),
                "description": (
                    "Undeclared capabilities are not checked: the request goes to the upstream, "
                    "which decides. Only a capability set to No keeps requests that need it "
                    "(chat, streaming, embeddings) away from this mapping."
                ),
            },
        ),
        ("Limits", {"fields": (("max_context_tokens", "max_output_tokens"),)}),
        ("Metadata", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="provider", ordering="provider__name")
    def provider_link(self, obj: ModelProviderMapping) -> str:
        url = reverse("admin:providers_provider_change", args=[obj.provider_id])
        return format_html('<a href="{}">{}</a>', url, obj.provider.name)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in dict(CAPABILITIES):
            kwargs["widget"] = CapabilitySelect
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="capabilities")
    def capabilities(self, obj: ModelProviderMapping) -> str:
        return capability_summary(obj)


@admin.register(ModelPrice)
class ModelPriceAdmin(GatewayModelAdmin):
    # Short columns: the verbose field names as headers would take most of a row's width.
    list_display = (
        "target",
        "input_price",
        "output_price",
        "cached_price",
        "effective_from_utc",
        "status_short",
    )
    list_filter = ("mapping__provider", "provider")
    list_select_related = ("mapping__provider", "provider")
    search_fields = ("mapping__model_alias", "provider__name", "provider_model_id")
    date_hierarchy = "effective_from"
    form = ModelPriceForm
    fields = ("status", "mapping", "provider", "provider_model_id", *PRICE_FIELDS, "effective_from")
    readonly_fields = ("status",)

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField[Any] | None:
        if db_field.name == "mapping":
            # A mapping's label names its provider: one query for the whole select.
            kwargs["queryset"] = ModelProviderMapping.objects.select_related("provider")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="applies to")
    def target(self, obj: ModelPrice) -> str:
        if obj.mapping_id:
            text = str(obj.mapping)
        else:
            name = obj.provider.name if obj.provider else "?"
            text = f"{name}:{obj.provider_model_id} (all aliases)"
        return format_html('<span style="white-space:nowrap">{}</span>', text)

    @admin.display(description="in $/1M", ordering="input_per_million")
    def input_price(self, obj: ModelPrice) -> str:
        return per_million(obj.input_per_million)

    @admin.display(description="out $/1M", ordering="output_per_million")
    def output_price(self, obj: ModelPrice) -> str:
        return per_million(obj.output_per_million)

    @admin.display(description="cached $/1M", ordering="cached_input_per_million")
    def cached_price(self, obj: ModelPrice) -> str:
        return per_million(obj.cached_input_per_million)

    @admin.display(description="status")
    def status(self, obj: ModelPrice) -> str:
        if price_in_effect(obj):
            return f"{price_status(obj)}. {LOCKED_HELP}"
        return price_status(obj)

    @admin.display(description="status", ordering="effective_from")
    def status_short(self, obj: ModelPrice) -> str:
        return price_badge(obj)

    @admin.display(description="effective from (UTC)", ordering="effective_from")
    def effective_from_utc(self, obj: ModelPrice) -> str:
        return format_html(
            '<span style="white-space:nowrap">{}</span>',
            obj.effective_from.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )

    def delete_refusal(self, obj: Any) -> str | None:
        if price_in_effect(obj):
            return PriceLocked(obj).sentence
        return super().delete_refusal(obj)


def route_explainer() -> Callable[[str], dict[str, Any]] | None:
    """alias -> the route a request would take now: the ``GATEWAY_ROUTE_EXPLAINER`` setting.

    A dotted path imported when a page renders, because ``mappings`` may not import
    ``gateway``. ``None`` when the setting is empty (no route shown).
    """
    path: str = getattr(settings, "GATEWAY_ROUTE_EXPLAINER", "")
    return import_string(path) if path else None


def route_now_html(alias: str) -> str:
    """The ``GET /v1/route`` explanation for ``alias`` as an admin table."""
    explain = route_explainer()
    if explain is None or not alias:
        return "—"
    try:
        data = explain(alias)
    except Exception as exc:  # an alias with no usable mapping, Redis trouble: say so
        return format_html("<em>{}</em>", str(getattr(exc, "message", exc)))
    rows = [
        (
            c["position"] or "skipped",
            c["provider_name"],
            c["key_name"] or "—",
            c["circuit"]["state"],
            "—"
            if c["limits"]["requests_headroom"] is None
            else f"{c['limits']['requests_headroom']:g} rpm left",
            c["price"]["estimated_cost"] if c["price"] else "—",
            c["reason"],
        )
        for c in [*data["candidates"], *data["skipped"]]
    ]
    head = format_html("<p>Strategy <b>{}</b> ({})</p>", data["strategy"], data["strategy_source"])
    body = format_html_join("", "<tr>" + "<td>{}</td>" * 7 + "</tr>", rows)
    return format_html(
        "{}<table><thead><tr><th>#</th><th>instance</th><th>key</th><th>circuit</th>"
        "<th>headroom</th><th>est. cost</th><th>why</th></tr></thead><tbody>{}</tbody></table>",
        head,
        body,
    )


@admin.register(AliasRoutingPolicy)
class AliasRoutingPolicyAdmin(GatewayModelAdmin):
    """Per-alias strategy, and the alias's route right now (read-only)."""

    list_display = ("alias", "strategy", "updated_at")
    search_fields = ("alias",)
    readonly_fields = ("route_now", "updated_at")
    fields = ("alias", "strategy", "route_now", "updated_at")

    @admin.display(description="route now (what a request would try, and why)")
    def route_now(self, obj: AliasRoutingPolicy) -> str:
        return route_now_html(obj.alias) if obj.pk else "—"


@admin.register(TierAlias)
class TierAliasAdmin(GatewayModelAdmin):
    """Claude tiers (big/middle/small) -> alias, for ``POST /v1/messages`` clients."""

    list_display = ("tier", "alias", "is_default", "updated_at")
    fields = ("tier", "alias", "is_default")


@admin.register(TierPattern)
class TierPatternAdmin(GatewayModelAdmin):
    """Requested Claude model name patterns -> tier (first match by position wins).

    With no rows, ``*opus*`` -> big, ``*sonnet*`` -> middle, ``*haiku*`` -> small apply."""

    list_display = ("position", "pattern", "tier")
    list_editable = ("pattern", "tier")
    ordering = ("position",)
    fields = ("position", "pattern", "tier")
