"""Admin for API tokens: the plaintext is shown once, after creation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from gateway.adminapi.models import ApiToken, token_generate


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "user", "is_active", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "user", "token_prefix", "is_active", "expires_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "user__username", "token_prefix"]
    readonly_fields = ["token_prefix", "last_used_at", "created_at"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        plaintext = None
        if not change:
            plaintext = token_generate()
            obj.set_token(plaintext)
        super().save_model(request, obj, form, change)
        if plaintext:
            messages.warning(
                request,
                f"API token for {obj.user}: {plaintext} — copy it now, it is not shown again. "
                "Only staff users' tokens are accepted.",
            )
