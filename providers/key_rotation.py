"""Re-encryption of stored provider API keys and custom header values with the newest key."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, models, transaction

from providers.models import Provider, ProviderKeyCredential
from providers.secrets import (
    HEADER_TOKEN_PREFIX,
    InvalidToken,
    header_value_encrypt,
    rotate,
)


class UndecryptableKeys(Exception):
    """Some stored keys decrypt with none of ``FIELD_ENCRYPTION_KEYS``; nothing was changed."""

    def __init__(self, ids: list[int], what: str = "provider key(s)") -> None:
        super().__init__(ids)
        self.ids = ids
        self.what = what

    def __str__(self) -> str:
        shown = ", ".join(str(i) for i in self.ids[:20])
        more = f" and {len(self.ids) - 20} more" if len(self.ids) > 20 else ""
        return (
            f"{len(self.ids)} {self.what} cannot be decrypted with any key in "
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


def _header_value_rotated(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(HEADER_TOKEN_PREFIX):
        return HEADER_TOKEN_PREFIX + rotate(value[len(HEADER_TOKEN_PREFIX) :])
    # A literal written before values were encrypted: encrypt it now.
    return header_value_encrypt(value)


@transaction.atomic
def provider_headers_reencrypt() -> int:
    """Re-encrypt every stored custom header value of every instance with the first key.

    Works on the raw JSON like :func:`provider_keys_reencrypt` (no ``updated_at``, no config
    version bump); literal values stored before encryption existed are encrypted on the way.
    Raises :class:`UndecryptableKeys` (nothing changed) when a value decrypts with no key.
    Returns the number of instances whose headers were rewritten.
    """
    meta = Provider._meta
    quote = connection.ops.quote_name
    table, column, pk = quote(meta.db_table), quote("custom_headers"), quote("id")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {column} FROM {table} ORDER BY {pk}{lock}")  # noqa: S608
        rows = cursor.fetchall()
        updates: list[tuple[Any, int]] = []
        bad: list[int] = []
        for row_id, raw in rows:
            headers = json.loads(raw) if isinstance(raw, str | bytes) else raw
            if not isinstance(headers, dict) or not headers:
                continue
            try:
                rotated = {name: _header_value_rotated(v) for name, v in headers.items()}
            except InvalidToken:
                bad.append(row_id)
                continue
            updates.append((connection.ops.adapt_json_value(rotated, None), row_id))
        if bad:
            raise UndecryptableKeys(bad, what="provider instance(s) with custom header values")
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
            updates,
        )
    return len(updates)
