"""Admin for API tokens: the plaintext is shown once, in the body of the response to the POST
that created it (never in Django's messages cookie or the session).

A token acts as its user, so minting one for somebody else is for superusers only: other staff
(with the add permission) mint tokens for themselves and see only their own tokens.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from gateway.adminapi.models import ApiToken, token_generate
from gateway.adminapi.services import api_token_owner_check
from providers.admin_base import secret_once_response

SHOWN_ONCE_ATTR = "gateway_created_api_token"


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

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user_id=request.user.pk)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> Any:
        if db_field.name == "user" and not request.user.is_superuser:
            # Only oneself to choose from: a token for another user is a superuser's act.
            kwargs["queryset"] = db_field.remote_field.model._default_manager.filter(
                pk=request.user.pk
            )
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        api_token_owner_check(actor=request.user, owner=obj.user)
        plaintext = None
        if not change:
            plaintext = token_generate()
            obj.set_token(plaintext)
        super().save_model(request, obj, form, change)
        if plaintext:
            # On the request, not on this admin (one instance serves every request).
            setattr(request, SHOWN_ONCE_ATTR, (obj.pk, plaintext))

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        created = getattr(request, SHOWN_ONCE_ATTR, None)
        if created is None or created[0] != obj.pk:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"API token “{obj.name}” was added.", messages.SUCCESS)
        return secret_once_response(
            request,
            title="API token shown once",
            secrets=[
                (
                    f"API token “{obj.name}” for {obj.user}",
                    created[1],
                    "Only staff users' tokens are accepted.",
                )
            ],
            back_url=reverse("admin:adminapi_apitoken_changelist"),
        )
