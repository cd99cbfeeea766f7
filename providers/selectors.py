"""Reads of provider instances and their keys shared by the services and their callers."""

from __future__ import annotations

from collections.abc import Iterable

from providers.models import ProviderKeyCredential


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
