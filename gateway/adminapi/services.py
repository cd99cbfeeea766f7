"""Writes of the admin REST API: request data onto model instances, then the shared services.

Provider instances and their keys are written by :mod:`providers.services`, the write path the
admin and configuration import use too: the same invariants (model ``clean()``, one primary
key, ``${VAR}`` references set in this process's environment), one transaction, one
configuration-version bump. Mappings, prices and virtual keys go through
:func:`config_object_save` (the model's ``full_clean()``, then save). Either way a save bumps
the configuration version, so gateway processes rebuild their route table within about a
second, without a restart. Admin API tokens are created here too
(``api_token_create``: the plaintext is returned once, only its hash is stored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import models, transaction

from gateway.adminapi.models import ApiToken, token_generate
from providers.models import Provider, ProviderKeyCredential
from providers.selectors import provider_keys_by_name
from providers.services import provider_key_save, provider_save


def config_object_save(*, obj: models.Model, values: dict[str, Any]) -> models.Model:
    """Apply ``values`` to ``obj`` (new or existing), validate like admin and import, save."""
    for name, value in values.items():
        setattr(obj, name, value)
    obj.full_clean()
    obj.save()
    return obj


def provider_upsert(
    *, provider: Provider, values: dict[str, Any], keys: list[dict[str, Any]] | None
) -> Provider:
    """Create or update an instance and upsert its ``keys`` by ``key_name`` (keys not listed
    stay as they are; delete them through /api/provider-keys/).

    Raises :class:`~providers.services.ProviderInvalid`, with nothing written, when the
    instance or a key is invalid.
    """
    for name, value in values.items():
        setattr(provider, name, value)
    stored = provider_keys_by_name(provider_ids=[provider.pk]) if provider.pk else {}
    by_name = stored.get(provider.pk, {}) if provider.pk else {}
    objs: list[ProviderKeyCredential] = []
    for data in keys or []:
        key = by_name.get(data["key_name"]) or ProviderKeyCredential()
        for name, value in data.items():
            setattr(key, name, value)
        objs.append(key)
    return provider_save(provider=provider, keys=objs)


def provider_key_upsert(*, key: ProviderKeyCredential, values: dict[str, Any]) -> None:
    """Apply ``values`` to ``key`` (new or stored) and save it through the shared service."""
    for name, value in values.items():
        setattr(key, name, value)
    provider_key_save(key=key)


def api_token_owner_check(*, actor: Any, owner: Any) -> None:
    """Raise ``PermissionDenied`` unless ``actor`` may hold a token acting as ``owner``.

    A token acts as its user: minting one for another user (a superuser above all) would let a
    staff user act with that user's rights, so only superusers may do it.
    """
    if getattr(actor, "is_superuser", False):
        return
    if owner is None or getattr(actor, "pk", None) != getattr(owner, "pk", None):
        raise PermissionDenied("only superusers can create API tokens for another user")


@transaction.atomic
def api_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_at: datetime | None = None,
    created_by: Any = None,
) -> tuple[ApiToken, str]:
    """Create an admin API token for ``user``; return it with its plaintext (shown once).

    ``created_by`` is the user asking, when a person asks through the admin or an API (the
    ``api_token`` command runs as the operator and passes none): a staff user may create
    tokens only for themselves (:func:`api_token_owner_check`).
    """
    if created_by is not None:
        api_token_owner_check(actor=created_by, owner=user)
    plaintext = token_generate()
    token = ApiToken(name=name, user=user, expires_at=expires_at)  # type: ignore[misc]
    token.set_token(plaintext)
    token.full_clean()
    token.save()
    return token, plaintext
