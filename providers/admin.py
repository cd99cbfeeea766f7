"""Admin for provider instances and their key credentials.

API keys are write-only here: the form never renders a stored key (not as a value, not as an
initial value), the page shows only ``masked_key``, and an empty box on edit keeps the key.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import BaseFormSet, ModelForm
from django.forms.models import BaseInlineFormSet, BaseModelFormSet
from django.http import HttpRequest
from django.utils.html import format_html

from providers.admin_base import GatewayModelAdmin
from providers.models import Provider, ProviderKeyCredential
from providers.services import (
    ProviderInvalid,
    provider_delete,
    provider_save,
    provider_validate,
)

KEY_FIELDS = [
    "key_name",
    "api_key",
    "account_group",
    "is_primary",
    "is_enabled",
    "organization",
    "base_url",
]


class ProviderKeyCredentialForm(forms.ModelForm):
    """A key credential with a write-only ``api_key``."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = ProviderKeyCredential
        fields = KEY_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # model_to_dict put the decrypted key into the initial data; drop it so nothing can
        # render it and so an empty box counts as "unchanged" (no spurious log entries).
        self.initial["api_key"] = ""
        field = self.fields["api_key"]
        if self.instance.pk:
            # help_text is rendered unescaped by the admin templates: format_html escapes.
            field.help_text = format_html(
                "Stored: <code>{}</code>. Leave empty to keep it; type a new key or a "
                "${{VAR}} reference to replace it.",
                self.instance.masked_key,
            )
        else:
            field.help_text = (
                "The key, or a ${VAR} reference resolved from the environment. "
                "Not needed for Ollama and mock instances."
            )

    def clean_api_key(self) -> str:
        value: str = self.cleaned_data.get("api_key") or ""
        if not value and self.instance.pk:
            return self.instance.api_key or ""  # empty on edit: keep the stored key
        return value


class ProviderKeyFormSet(BaseInlineFormSet):
    """Checks the keys of one submission together with the instance, as the save will.

    The model's own checks look at the database: they cannot see the type chosen on this
    form, nor two keys marked primary in one submission (which would otherwise reach the
    partial unique constraint as an IntegrityError). ``provider_validate`` can; its key errors
    land on the key's row, its instance errors are the instance form's to show.
    """

    def clean(self) -> None:
        super().clean()
        forms = [
            form
            for form in self.forms
            if hasattr(form, "cleaned_data")
            and form not in self.deleted_forms
            and (form.instance.pk or form.has_changed())  # else an untouched extra row
        ]
        deleted = [form.instance for form in self.deleted_forms if form.instance.pk]
        try:
            provider_validate(
                provider=self.instance,
                keys=[form.instance for form in forms],
                delete_keys=deleted,
                check_references=False,
            )
        except ProviderInvalid as exc:
            for index, errors in exc.key_errors.items():
                form = forms[index]
                for name, field_errors in errors.items():
                    if name in form.errors:
                        continue  # the form's own model check said it already
                    form.add_error(name if name in form.fields else None, field_errors)


class ProviderKeyCredentialInline(admin.StackedInline):
    model = ProviderKeyCredential
    form = ProviderKeyCredentialForm
    formset = ProviderKeyFormSet
    extra = 0
    readonly_fields = ("stored_key",)
    verbose_name = "key"
    verbose_name_plural = "keys"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if self.has_change_permission(request, obj):
            return tuple(KEY_FIELDS)
        # View-only staff get read-only fields, and Django renders a read-only field's value
        # as is: show the masked key instead of the key.
        return tuple("stored_key" if f == "api_key" else f for f in KEY_FIELDS)

    @admin.display(description="API key")
    def stored_key(self, obj: ProviderKeyCredential) -> str:
        return obj.masked_key if obj.pk else "—"


class ProviderForm(forms.ModelForm):
    class Meta:
        model = Provider
        exclude: list[str] = []
        help_texts = {
            "custom_headers": (
                'A JSON object of header name to value, e.g. {"X-Cost-Center": "${CC}"}. '
                "Hop-by-hop headers, Host and Content-Length are managed by the gateway."
            ),
            "forward_headers": (
                'A JSON list of client header names passed through, e.g. ["X-Request-Id"]. '
                "Credentials (Authorization, x-api-key, Cookie) are never forwarded."
            ),
        }


@admin.register(Provider)
class ProviderAdmin(GatewayModelAdmin):
    form = ProviderForm
    inlines = [ProviderKeyCredentialInline]
    list_display = (
        "name",
        "provider_type",
        "is_enabled",
        "base_url_display",
        "key_count",
        "health",
    )
    list_filter = ("provider_type", "is_enabled")
    search_fields = ("name",)
    actions = ["enable_selected", "disable_selected"]
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (
            "Connection",
            {
                "fields": (
                    "name",
                    "provider_type",
                    "preset",
                    "is_enabled",
                    "base_url",
                    "api_version",
                    ("timeout", "connect_timeout"),
                    "max_retries",
                )
            },
        ),
        ("Headers", {"fields": ("custom_headers", "forward_headers")}),
        ("Limits", {"fields": (("requests_per_minute", "tokens_per_minute"),)}),
        (
            "Health check",
            {"fields": ("health_check_interval", "health_check_probe", "health_check_model")},
        ),
        ("Metadata", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        # One query for the changelist, however many keys each instance has.
        return super().get_queryset(request).annotate(_key_count=Count("keys"))

    # --- writes go through providers.services ---------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: Provider, form: ModelForm, change: bool
    ) -> None:
        # Written with its keys in save_related: instance and keys are one change (one
        # validation, one config-version bump).
        pass

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: list[BaseFormSet], change: bool
    ) -> None:
        keys: list[ProviderKeyCredential] = []
        deleted: list[ProviderKeyCredential] = []
        for formset in formsets:
            assert isinstance(formset, BaseModelFormSet)
            # commit=False fills new/changed/deleted_objects (the change message reads them)
            # without writing anything.
            formset.save(commit=False)
            keys += formset.new_objects + [obj for obj, _ in formset.changed_objects]
            deleted += formset.deleted_objects
        # ${VAR} references are resolved by the gateway processes, whose environment the
        # admin's web process need not share: they are not checked here.
        provider_save(
            provider=form.instance, keys=keys, delete_keys=deleted, check_references=False
        )

    def delete_model(self, request: HttpRequest, obj: Provider) -> None:
        provider_delete(provider=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            provider_delete(provider=provider)

    @admin.display(description="base URL", ordering="base_url")
    def base_url_display(self, obj: Provider) -> str:
        return obj.effective_base_url or "(in process)"

    @admin.display(description="keys", ordering="_key_count")
    def key_count(self, obj: Provider) -> int:
        return int(getattr(obj, "_key_count", 0))

    @admin.display(description="health")
    def health(self, obj: Provider) -> str:
        """Health column: a placeholder until health-check records exist.

        Replace this method to show the latest record's status; annotate that status in
        ``get_queryset`` so the changelist stays one query.
        """
        return "—"
