"""Writes of the admin REST API: the same validation as admin and import, then save.

Every save goes through the model's ``full_clean()`` (the invariants admin forms enforce) and
the import's rule that every ``${VAR}`` reference must be set in this process's environment.
Saving a provider, key, mapping, price or virtual key bumps the configuration version (the
model signals of ``providers.config_version.watch``), so gateway processes rebuild their route
table within about a second, without a restart. Admin API tokens are created here too
(``api_token_create``: the plaintext is returned once, only its hash is stored).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction

from gateway.adminapi.models import ApiToken, token_generate
from providers.envsubst import references
from providers.models import Provider, ProviderKeyCredential
from providers.types import KEYLESS_TYPES

# Fields whose ${VAR} references are resolved when the route table is built.
REFERENCE_FIELDS = {"base_url", "api_key"}


def _check_references(obj: models.Model) -> None:
    errors: dict[str, list[str]] = {}
    for name in REFERENCE_FIELDS:
        value = getattr(obj, name, None)
        if isinstance(value, str):
            missing = [v for v in references(value) if v not in os.environ]
            if missing:
                errors[name] = [f"environment variable {m} is not set" for m in missing]
    headers = getattr(obj, "custom_headers", None)
    if isinstance(headers, dict):
        for header, value in headers.items():
            if isinstance(value, str):
                missing = [v for v in references(value) if v not in os.environ]
                if missing:
                    errors.setdefault("custom_headers", []).append(
                        f"{header}: environment variable {missing[0]} is not set"
                    )
    if errors:
        raise ValidationError(errors)


def config_object_save(*, obj: models.Model, values: dict[str, Any]) -> models.Model:
    """Apply ``values`` to ``obj`` (new or existing), validate like admin and import, save."""
    for name, value in values.items():
        setattr(obj, name, value)
    obj.full_clean()
    _check_references(obj)
    obj.save()
    return obj


@transaction.atomic
def provider_save(
    *, provider: Provider, values: dict[str, Any], keys: list[dict[str, Any]] | None
) -> Provider:
    """Create or update an instance and upsert its ``keys`` by ``key_name`` (keys not listed
    stay as they are; delete them through /api/provider-keys/)."""
    is_new = provider.pk is None
    config_object_save(obj=provider, values=values)
    if keys is None:
        return provider
    if len([k for k in keys if k.get("is_primary")]) > 1:
        raise ValidationError({"keys": "only one key per instance may be primary"})
    existing = {k.key_name: k for k in provider.keys.all()} if not is_new else {}
    # Demote before promoting: the partial unique index allows one primary at any moment.
    ordered = sorted(keys, key=lambda k: bool(k.get("is_primary")))
    for index, data in enumerate(ordered):
        data = dict(data)
        key = existing.get(data["key_name"]) or ProviderKeyCredential(provider=provider)
        if (
            key.pk is None
            and not data.get("api_key")
            and provider.provider_type not in (KEYLESS_TYPES)
        ):
            raise ValidationError(
                {"keys": [f"key {index}: {provider.provider_type} keys need an api_key"]}
            )
        try:
            config_object_save(obj=key, values=data)
        except ValidationError as exc:
            raise ValidationError({"keys": {data["key_name"]: exc.messages}}) from exc
    return provider


@transaction.atomic
def api_token_create(
    *, user: AbstractBaseUser, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create an admin API token for ``user``; return it with its plaintext (shown once)."""
    plaintext = token_generate()
    token = ApiToken(name=name, user=user, expires_at=expires_at)  # type: ignore[misc]
    token.set_token(plaintext)
    token.full_clean()
    token.save()
    return token, plaintext
