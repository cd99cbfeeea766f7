"""Re-encryption of stored provider API keys with the newest encryption key."""

from __future__ import annotations

from django.db import connection, models, transaction

from providers.models import ProviderKeyCredential
from providers.secrets import InvalidToken, rotate


class UndecryptableKeys(Exception):
    """Some stored keys decrypt with none of ``FIELD_ENCRYPTION_KEYS``; nothing was changed."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(ids)
        self.ids = ids

    def __str__(self) -> str:
        shown = ", ".join(str(i) for i in self.ids[:20])
        more = f" and {len(self.ids) - 20} more" if len(self.ids) > 20 else ""
        return (
            f"{len(self.ids)} provider key(s) cannot be decrypted with any key in "
            f"FIELD_ENCRYPTION_KEYS (ids {shown}{more}); is the old key still in the list? "
            "Nothing was re-encrypted."
        )


@transaction.atomic
def provider_keys_reencrypt() -> int:
    """Re-encrypt every stored ``ProviderKeyCredential.api_key`` with the first key.

    Works on the raw column (Fernet tokens), never on plaintext: the ORM would decrypt on read
    and re-encrypt on save, which also works but touches ``updated_at`` and bumps the config
    version although no key changed. All rows move in one transaction, so after it the old
    encryption key can be dropped from the settings. Returns the number of keys rotated.
    """
    meta = ProviderKeyCredential._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    api_key, pk_field = meta.get_field("api_key"), meta.pk
    assert isinstance(api_key, models.Field) and api_key.column
    assert pk_field is not None and pk_field.column
    column, pk = quote(api_key.column), quote(pk_field.column)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk}, {column} FROM {table} WHERE {column} <> '' ORDER BY {pk}{lock}"  # noqa: S608
        )
        rows = cursor.fetchall()
        updates: list[tuple[str, int]] = []
        bad: list[int] = []
        for row_id, token in rows:
            try:
                updates.append((rotate(token), row_id))
            except InvalidToken:
                bad.append(row_id)
        if bad:
            raise UndecryptableKeys(bad)
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
            updates,
        )
    return len(updates)
