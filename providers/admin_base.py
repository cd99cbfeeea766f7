"""Building blocks shared by every app's admin.

``providers`` is the ground floor, so ``mappings`` and ``gateway`` import these; nothing here
knows about the apps above (PROTECT relations are found through model metadata).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from providers.config_version import config_version_bump


class PrettyJSONField(forms.JSONField):
    """A JSON form field that shows indented JSON and maps an empty box to the model default.

    Django's JSON form field turns an empty textarea into ``None``; the gateway's JSON columns
    are ``NOT NULL`` with ``{}``/``[]`` defaults, and a ``None`` would pass ``blank=True``
    validation and then fail at the database as a 500.
    """

    def __init__(self, *, empty: Callable[[], Any], **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget",
            forms.Textarea(attrs={"rows": 4, "cols": 60, "style": "font-family: monospace"}),
        )
        super().__init__(**kwargs)
        self.empty = empty

    def to_python(self, value: Any) -> Any:
        result = super().to_python(value)
        return self.empty() if result is None else result

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def protected_referrers(obj: models.Model) -> list[str]:
    """Plural names of the models whose ``PROTECT`` foreign keys still point at ``obj``.

    One ``EXISTS`` per relation: counting (or listing, as Django's stock "cannot delete" page
    does) every usage record of a busy provider would be slow and useless.
    """
    names: list[str] = []
    for rel in obj._meta.related_objects:
        if getattr(rel, "on_delete", None) is not models.PROTECT:
            continue
        related = rel.related_model
        if not isinstance(related, type):  # a lazy "app.Model" string: not loaded, no rows
            continue
        if related._default_manager.filter(**{rel.field.name: obj}).exists():
            names.append(str(related._meta.verbose_name_plural))
    return names


class ReadOnlyAdminMixin:
    """For records the gateway writes itself (usage, probe history): staff may look, never
    add, change or delete them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GatewayModelAdmin(admin.ModelAdmin):
    """Base admin: JSON editing, deletion that explains PROTECT, enable/disable actions.

    Subclasses opt in to the enable/disable actions by listing ``"enable_selected"`` and
    ``"disable_selected"`` in ``actions`` (the model needs an ``is_enabled`` field).
    """

    def formfield_for_dbfield(
        self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", PrettyJSONField)
            kwargs.setdefault("empty", db_field.get_default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # --- deletion ------------------------------------------------------------------------

    def refuse_delete_message(self, obj: models.Model, referrers: list[str]) -> str:
        """The message shown instead of deleting ``obj``; says what to do instead."""
        name = self.model._meta.verbose_name
        text = (
            f"The {name} “{obj}” cannot be deleted: {', '.join(referrers)} refer to it and "
            "must keep it for their history."
        )
        if any(f.name == "is_enabled" for f in self.model._meta.fields):
            text += (
                f" Disable it instead (untick “enabled”): a disabled {name} is no longer used "
                "and its history stays intact."
            )
        return text

    def delete_refusal(self, obj: models.Model) -> str | None:
        """Why ``obj`` must not be deleted (shown instead of deleting), or None.

        By default: rows with ``PROTECT`` references. Subclasses add their own rules.
        """
        referrers = protected_referrers(obj)
        return self.refuse_delete_message(obj, referrers) if referrers else None

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            refusal = self.delete_refusal(obj)
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                opts = self.model._meta
                if self.has_view_or_change_permission(request, obj):
                    url = reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_change",
                        args=[obj.pk],
                        current_app=self.admin_site.name,
                    )
                else:
                    url = reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_changelist",
                        current_app=self.admin_site.name,
                    )
                return HttpResponseRedirect(url)
        return super().delete_view(request, object_id, extra_context)

    @staticmethod
    def _delete_selected_unless_protected(
        modeladmin: GatewayModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        # Runs on the confirmation page and again on "Yes, I'm sure": both are refused.
        refused = [text for obj in queryset if (text := modeladmin.delete_refusal(obj))]
        if refused:
            for text in refused:
                modeladmin.message_user(request, text, messages.ERROR)
            modeladmin.message_user(
                request, "Nothing was deleted.", messages.WARNING, fail_silently=True
            )
            return None
        return delete_selected(modeladmin, request, queryset)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        entry = actions.get("delete_selected")
        if entry is not None:
            # Same name and description, so the action menu looks as before.
            replacement: Any = self._delete_selected_unless_protected
            actions["delete_selected"] = (replacement, entry[1], entry[2])
        return actions

    # --- enable / disable ----------------------------------------------------------------

    @admin.action(description="Enable selected %(verbose_name_plural)s", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable selected %(verbose_name_plural)s", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Any], *, enabled: bool) -> None:
        # One UPDATE and one config-version bump: update() sends no post_save signals, so the
        # bump the signals would have made is made here, once, in the same transaction.
        with transaction.atomic():
            objs = list(queryset.exclude(is_enabled=enabled))
            if objs:
                values: dict[str, Any] = {"is_enabled": enabled}
                if any(f.name == "updated_at" for f in self.model._meta.fields):
                    values["updated_at"] = timezone.now()  # update() skips auto_now
                self.model._default_manager.filter(pk__in=[o.pk for o in objs]).update(**values)
                config_version_bump()
                verb = "Enabled" if enabled else "Disabled"
                for obj in objs:
                    self.log_change(request, obj, f"{verb} (bulk action).")
        state = "enabled" if enabled else "disabled"
        opts = self.model._meta
        noun = opts.verbose_name if len(objs) == 1 else opts.verbose_name_plural
        self.message_user(request, f"{len(objs)} {noun} {state}.", messages.SUCCESS)


def secret_once_response(
    request: HttpRequest,
    *,
    title: str,
    secrets: list[tuple[str, str, str]],
    back_url: str,
) -> HttpResponse:
    """A page showing ``secrets`` (label, plaintext, note) once, with a copy button each.

    The plaintext travels in this response's body only: never in Django's messages (a signed,
    not encrypted, cookie) or the session. The page is not cached.
    """
    response = TemplateResponse(
        request,
        "admin/secret_once.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "secrets": secrets,
            "back_url": back_url,
        },
    )
    response["Cache-Control"] = "no-store"
    return response
