"""Admin API tokens: staff credentials for the admin REST API and the report endpoints.

The model was created by the ``reports`` app and keeps its table (``reports_apitoken``): it
moved here without touching the database.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

API_TOKEN_PREFIX = "gwat_"


def token_hash(plaintext: str) -> str:
    """SHA-256 hex digest of a presented API token (what is stored and looked up)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_generate() -> str:
    """A new admin API token: recognisable prefix + 256 bits of randomness."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    """A token for the admin REST API and report endpoints, acting as ``user``.

    Only the SHA-256 is stored; the plaintext is shown once when created (admin or
    ``manage.py api_token create``). Only staff users are let in, whatever the token.
    """

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "reports_apitoken"
        ordering = ["-created_at"]
        verbose_name = "admin API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    def set_token(self, plaintext: str) -> None:
        self.token_hash = token_hash(plaintext)
        self.token_prefix = plaintext[: len(API_TOKEN_PREFIX) + 4]

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
