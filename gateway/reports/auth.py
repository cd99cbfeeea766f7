"""``Authorization: Bearer gwat_...``: staff API tokens for the admin API and report endpoints.

The token only says who the caller is; the views' permission
(``gateway.adminapi.permissions.GatewayModelPermissions``) lets in staff users with the model
permissions alone, so a token of a user who lost staff status gets 403.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from gateway.adminapi.models import API_TOKEN_PREFIX, ApiToken, token_hash


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        # Only our tokens: anything else (a virtual key, another scheme) is not ours to judge.
        if scheme.lower() != "bearer" or not value.startswith(API_TOKEN_PREFIX):
            return None
        token = ApiToken.objects.select_related("user").filter(token_hash=token_hash(value)).first()
        if token is None or not token.is_active or token.is_expired:
            raise exceptions.AuthenticationFailed("invalid or expired API token")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("the token's user is inactive")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "gateway.reports.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "Staff API token (gwat_...)"}
