"""``manage.py rotate_encryption_keys``: re-encrypt provider API keys and custom header values
with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from providers.key_rotation import (
    UndecryptableKeys,
    provider_headers_reencrypt,
    provider_keys_reencrypt,
)


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider API key and custom header value with the first key "
        "of FIELD_ENCRYPTION_KEYS. "
        "Rotation: put the new key first, run this, then remove the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # One transaction: either everything moves to the new key or nothing does.
            with transaction.atomic():
                count = provider_keys_reencrypt()
                headers = provider_headers_reencrypt()
        except UndecryptableKeys as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Re-encrypted {count} provider API key(s) and the custom header values of"
            f" {headers} instance(s) with the first key."
        )
