"""Admin for provider instances and their key credentials.

API keys are write-only here: the form never renders a stored key (not as a value, not as an
initial value), the page shows only ``masked_key``, and an empty box on edit keeps the key.
Literal custom header values are shown masked; a masked value left as shown keeps the stored
one. Validation is the shared one (``providers.services``), ``${VAR}`` references included, so
the admin refuses what the REST API and import refuse, with the same messages.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import BaseFormSet, ModelForm
from django.forms.models import BaseInlineFormSet, BaseModelFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from providers.admin_base import GatewayModelAdmin
from providers.admin_health import ProviderHealthAdminMixin
from providers.aws import AWS_PARTS, credentials_compose
from providers.models import Provider, ProviderKeyCredential
from providers.secrets import (
    Undecryptable,
    headers_masked,
    headers_unmasked,
    tolerant_decryption,
)
from providers.services import (
    ProviderInvalid,
    provider_delete,
    provider_reference_errors,
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


def _secret_input(size: int = 10) -> forms.PasswordInput:
    return forms.PasswordInput(
        render_value=False, attrs={"autocomplete": "new-password", "size": size}
    )


class ProviderKeyCredentialForm(forms.ModelForm):
    """A key credential with a write-only ``api_key`` (or, for Bedrock, the AWS credentials,
    write-only too, composed into it: ``providers.aws``)."""

    access_key_id = forms.CharField(
        label="AWS access key id",
        required=False,
        strip=True,
        help_text="Bedrock only, with the secret access key (replaces the stored credentials).",
        widget=forms.TextInput(attrs={"size": 12}),
    )
    secret_access_key = forms.CharField(
        label="AWS secret access key",
        required=False,
        strip=True,
        help_text="Bedrock only. A ${VAR} reference is allowed.",
        widget=_secret_input(),
    )
    session_token = forms.CharField(
        label="AWS session token",
        required=False,
        strip=True,
        help_text="Bedrock only, optional (temporary credentials).",
        widget=_secret_input(),
    )

    api_key = forms.CharField(
        label="API key",
        required=False,
        help_text=(
            "A new key or a ${VAR} reference. Leave empty to keep the stored key; not needed "
            "for Ollama and mock instances. Vertex AI: the service-account JSON, pasted whole."
        ),
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "size": 14}
        ),
    )

    class Meta:
        model = ProviderKeyCredential
        fields = KEY_FIELDS
        # A compact row per key (tabular inline): short boxes, help as the column's tooltip.
        widgets = {
            "key_name": forms.TextInput(attrs={"size": 12}),
            "organization": forms.TextInput(attrs={"size": 10}),
            "base_url": forms.TextInput(attrs={"size": 16}),
        }
        help_texts = {
            "account_group": (
                "0-32. Keys in one group share an upstream account's limits: on a 429 the "
                "gateway moves to a key of another group."
            ),
            "is_primary": "Tried first. At most one primary key per instance.",
            "base_url": "Overrides the instance's base URL for this key.",
            "organization": "Sent as OpenAI-Organization.",
        }

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

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        parts = [str(cleaned.get(name) or "") for name in AWS_PARTS]
        if not any(parts):
            return cleaned
        if self.data.get(self.add_prefix("api_key")):
            self.add_error("api_key", "give an API key or the AWS credentials, not both")
        for name, value in zip(AWS_PARTS[:2], parts[:2], strict=True):
            if not value:
                self.add_error(name, "required with the other AWS credential fields")
        if not self.errors:
            cleaned["api_key"] = credentials_compose(*parts)
        return cleaned


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
            # Untouched rows (an extra row, or a stored key left as it is) count as stored,
            # as in the REST API: a key nobody edits is not re-judged on every save.
            and form.has_changed()
        ]
        deleted = [form.instance for form in self.deleted_forms if form.instance.pk]
        try:
            provider_validate(
                provider=self.instance,
                keys=[form.instance for form in forms],
                delete_keys=deleted,
            )
        except ProviderInvalid as exc:
            for index, errors in exc.key_errors.items():
                form = forms[index]
                for name, field_errors in errors.items():
                    if name in form.errors:
                        continue  # the form's own model check said it already
                    form.add_error(name if name in form.fields else None, field_errors)


class ProviderKeyCredentialInline(admin.TabularInline):
    model = ProviderKeyCredential
    form = ProviderKeyCredentialForm
    formset = ProviderKeyFormSet
    extra = 0
    readonly_fields = ("stored_key", "key_status")
    verbose_name = "key"
    verbose_name_plural = "keys"
    classes = ("gw-keys",)
    template = "admin/providers/provider/keys_inline.html"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if self.has_change_permission(request, obj):
            # A table row has no room for per-row help: the stored (masked) key is a column.
            return (
                "key_name",
                "stored_key",
                *KEY_FIELDS[1:2],
                *AWS_PARTS,
                *KEY_FIELDS[2:],
                "key_status",
            )
        # View-only staff get read-only fields, and Django renders a read-only field's value
        # as is: show the masked key instead of the key.
        return (*("stored_key" if f == "api_key" else f for f in KEY_FIELDS), "key_status")

    @admin.display(description="stored key")
    def stored_key(self, obj: ProviderKeyCredential) -> str:
        if isinstance(obj.api_key, Undecryptable):
            return "(cannot decrypt)"
        if not obj.pk:
            return "—"
        return format_html('<code style="white-space:nowrap">{}</code>', obj.masked_key)

    @admin.display(description="status")
    def key_status(self, obj: ProviderKeyCredential) -> str:
        if isinstance(obj.api_key, Undecryptable):
            return (
                "cannot decrypt: no FIELD_ENCRYPTION_KEYS entry opens it; it is left out of "
                "routing until its key is configured again or a new API key is entered here"
            )
        return "ok" if obj.pk else "—"


class ProviderForm(forms.ModelForm):
    """The instance's own fields; custom header values are masked and write-only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["custom_headers"] = headers_masked(self.instance.custom_headers)

    def clean_custom_headers(self) -> Any:
        # A value left masked as shown keeps the stored value (self.instance is still stored).
        stored = self.instance.custom_headers if self.instance.pk else None
        return headers_unmasked(self.cleaned_data.get("custom_headers"), stored)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The instance's ${VAR} references (its keys' are checked by the key formset), with
        # the shared check and message.
        probe = Provider(
            base_url=cleaned.get("base_url") or "",
            custom_headers=cleaned.get("custom_headers") or {},
        )
        for name, errors in provider_reference_errors(provider=probe).items():
            if name in cleaned:
                self.add_error(name, errors)
        return cleaned

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
            "anthropic_beta_allow": (
                'anthropic-beta flags clients may send to this instance, e.g. ["context-1m"] '
                '(a name admits every dated version), ["*"] for any, [] for none. Empty: the '
                "format and tool betas Claude Code sends."
            ),
        }


@admin.register(Provider)
class ProviderAdmin(ProviderHealthAdminMixin, GatewayModelAdmin):
    form = ProviderForm
    inlines = [ProviderKeyCredentialInline]
    list_display = (
        "name",
        "provider_type",
        "is_enabled",
        "base_url_display",
        "key_count",
        "health_status",
        "circuit_state",
        "last_probe",
    )
    list_filter = ("provider_type", "is_enabled")
    search_fields = ("name",)
    actions = ["probe_selected", "enable_selected", "disable_selected"]
    readonly_fields = (
        "created_at",
        "updated_at",
        *ProviderHealthAdminMixin.health_readonly_fields,
    )
    fieldsets = (
        (
            "Connection",
            {
                "fields": (
                    "name",
                    "provider_type",
                    "preset",
                    "region",
                    ("project", "location"),
                    "is_enabled",
                    "base_url",
                    "api_version",
                    ("timeout", "connect_timeout"),
                    "max_retries",
                )
            },
        ),
        ("Headers", {"fields": ("custom_headers", "forward_headers", "anthropic_beta_allow")}),
        ("Limits", {"fields": (("requests_per_minute", "tokens_per_minute"),)}),
        (
            "Health check",
            {"fields": ("health_check_interval", "health_check_probe", "health_check_model")},
        ),
        ("Metadata", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )
    health_fieldset = (
        "Health now",
        {
            "fields": ProviderHealthAdminMixin.health_readonly_fields,
            "description": "From the latest probe; “Check now” (top right) probes again.",
        },
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.fieldsets
        fieldsets = (self.fieldsets[0], self.health_fieldset, *self.fieldsets[1:])
        if self.has_change_permission(request, obj):
            return fieldsets
        # View-only staff get read-only fields, rendered as stored: show the headers masked.
        return [
            (
                title,
                {
                    **opts,
                    "fields": tuple(
                        "custom_headers_masked" if f == "custom_headers" else f
                        for f in opts["fields"]
                    ),
                },
            )
            for title, opts in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "custom_headers_masked")

    @admin.display(description="custom headers")
    def custom_headers_masked(self, obj: Provider) -> str:
        return json.dumps(headers_masked(obj.custom_headers), ensure_ascii=False)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # A key no configured Fernet key decrypts shows as "cannot decrypt" on its row instead
        # of failing the whole page; saved unchanged, its stored token is written back as is.
        with tolerant_decryption():
            response = super().changeform_view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()  # the inline rows are read while rendering
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        # One query for the changelist, however many keys each instance has: the key count
        # and the latest health check are annotations of the same SELECT.
        queryset = super().get_queryset(request).annotate(_key_count=Count("keys", distinct=True))
        return self.annotate_health(queryset)

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
        # ${VAR} references are checked as the REST API and import check them: the admin
        # runs with the gateway's environment (same settings, same deployment).
        provider_save(provider=form.instance, keys=keys, delete_keys=deleted)

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
