"""``manage.py rotate_encryption_keys``: re-encrypt provider API keys with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.key_rotation import UndecryptableKeys, provider_keys_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider API key with the first key of FIELD_ENCRYPTION_KEYS. "
        "Rotation: put the new key first, run this, then remove the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = provider_keys_reencrypt()
        except UndecryptableKeys as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Re-encrypted {count} provider API key(s) with the first key.")
