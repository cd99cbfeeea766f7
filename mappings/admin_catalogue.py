"""List prices from the catalogue where admins work: the mapping admin's "Suggest catalogue
price" link and "Add catalogue prices to selected mappings" action.

Both show first what the catalogue would add (each dated period, or why nothing), and write only
on a confirming POST, through :func:`mappings.services.catalogue_prices_load` (the command's
code). Adding prices needs the permission to add prices.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from mappings.catalogue import catalogue_version
from mappings.models import ModelProviderMapping
from mappings.services import CatalogueStatus, catalogue_prices_load, catalogue_suggestions

TEMPLATE = "admin/mappings/modelprovidermapping/catalogue_prices.html"


class CataloguePricesMixin:
    """Adds the catalogue's suggestion page and bulk action to the mapping admin."""

    admin_site: admin.AdminSite
    model: type[ModelProviderMapping]

    def get_urls(self) -> list[URLPattern]:
        suggest = path(
            "<path:object_id>/catalogue-price/",
            self.admin_site.admin_view(self.catalogue_price_view),
            name="mappings_modelprovidermapping_catalogue_price",
        )
        return [suggest, *super().get_urls()]  # type: ignore[misc]

    def has_add_price_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("mappings.add_modelprice"))

    def catalogue_price_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the catalogue's price history for this mapping; the confirmation posts to the
        bulk action."""
        mapping = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if mapping is None or not self.has_add_price_permission(request):
            raise PermissionDenied
        return self._catalogue_confirmation(request, [mapping])

    def _catalogue_confirmation(
        self, request: HttpRequest, mappings: list[ModelProviderMapping]
    ) -> HttpResponse:
        suggestions = catalogue_suggestions(mappings=mappings)
        return TemplateResponse(
            request,
            TEMPLATE,
            {
                **self.admin_site.each_context(request),
                "suggestions": suggestions,
                "new_status": CatalogueStatus.NEW,
                "addable": any(s.prices for s in suggestions),
                "catalogue_version": catalogue_version(),
                "action_url": reverse("admin:mappings_modelprovidermapping_changelist"),
                "opts": self.model._meta,
            },
        )

    @admin.action(
        description="Add catalogue list prices to selected mappings", permissions=["add_price"]
    )
    def add_catalogue_prices(
        self, request: HttpRequest, queryset: QuerySet[ModelProviderMapping]
    ) -> HttpResponse | None:
        mappings = list(queryset.select_related("provider").order_by("id"))
        if request.POST.get("confirm") != "yes":
            return self._catalogue_confirmation(request, mappings)
        with transaction.atomic():
            result = catalogue_prices_load(mapping_ids=[m.pk for m in mappings])
            for suggestion in result.suggestions:
                if suggestion.prices:
                    self.log_change(  # type: ignore[attr-defined]
                        request,
                        suggestion.mapping,
                        f"Added {len(suggestion.prices)} catalogue price(s) for "
                        f"{suggestion.mapping.provider_model_id}.",
                    )
        self.message_user(  # type: ignore[attr-defined]
            request,
            f"{len(result.created)} price(s) added from genai-prices {catalogue_version()}; "
            f"{result.already_priced} mapping(s) already priced"
            + (f"; no list price for: {', '.join(result.unknown)}" if result.unknown else ""),
            messages.SUCCESS if result.created else messages.WARNING,
        )
        return None

    @admin.display(description="catalogue price")
    def catalogue_price_link(self, obj: ModelProviderMapping) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:mappings_modelprovidermapping_catalogue_price", args=[obj.pk])
        return format_html('<a class="button" href="{}">Suggest catalogue price…</a>', url)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "catalogue_price_link")  # type: ignore[misc]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """The link only where it can be followed: a saved mapping, a user who may add prices."""
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is not None and self.has_add_price_permission(request):
            return fieldsets
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "catalogue_price_link"]})
            for name, opts in fieldsets
            if [f for f in opts["fields"] if f != "catalogue_price_link"]
        ]
