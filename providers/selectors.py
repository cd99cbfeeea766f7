"""Reads of provider instances and their keys shared by the services and their callers."""

from __future__ import annotations

from collections.abc import Iterable

from providers.models import ProviderKeyCredential
from providers.secrets import Undecryptable, tolerant_decryption


def provider_keys_by_name(
    *, provider_ids: Iterable[int] | None = None
) -> dict[int, dict[str, ProviderKeyCredential]]:
    """Stored keys grouped by instance ID, then by ``key_name`` (all instances when ``None``).

    One query however many instances; keys are decrypted as they are read, so a key encrypted
    with a removed ``FIELD_ENCRYPTION_KEYS`` entry raises ``InvalidToken`` here.
    """
    keys = ProviderKeyCredential.objects.all()
    if provider_ids is not None:
        keys = keys.filter(provider_id__in=list(provider_ids))
    grouped: dict[int, dict[str, ProviderKeyCredential]] = {}
    for key in keys:
        grouped.setdefault(key.provider_id, {})[key.key_name] = key
    return grouped


def provider_keys_undecryptable() -> dict[int, list[str]]:
    """Names of stored keys no ``FIELD_ENCRYPTION_KEYS`` entry decrypts, by instance ID (for
    the ops pages: each such key is left out of routing, the rest keep serving)."""
    found: dict[int, list[str]] = {}
    with tolerant_decryption():
        for key in ProviderKeyCredential.objects.order_by("key_name"):
            if isinstance(key.api_key, Undecryptable):
                found.setdefault(key.provider_id, []).append(key.key_name)
    return found
