"""The database form of the response store, used when there is no Redis."""

from __future__ import annotations

from django.db import models


class StoredResponse(models.Model):
    """One stored response: its ``Response`` object and the input items it answered.

    ``key_id`` is the owning virtual key's id, deliberately not a foreign key: the record
    must not tie this app's migrations to wherever the key model lives, and a deleted key's
    records are never readable (no key presents that id) and expire anyway.
    """

    id = models.CharField(primary_key=True, max_length=128)
    key_id = models.BigIntegerField()
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(db_index=True)
    #: orjson of ``{"response": {...}, "items": [...]}``.
    data = models.BinaryField()

    class Meta:
        verbose_name = "stored response"

    def __str__(self) -> str:
        return self.id
