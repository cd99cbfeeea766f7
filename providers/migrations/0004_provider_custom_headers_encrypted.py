"""Custom header values are encrypted at rest: encrypt the literal values already stored.

Reversible: going back writes the plaintext values again (``${VAR}`` values never changed).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, migrations

import providers.secrets


def _raw_write(provider_model: Any, pk: int, headers: Any) -> None:
    """Write ``headers`` into the column as given, past the field's encryption."""
    meta = provider_model._meta
    quote = connection.ops.quote_name
    value = connection.ops.adapt_json_value(headers, None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {quote('custom_headers')} = %s"  # noqa: S608
            f" WHERE {quote('id')} = %s",
            [value, pk],
        )


def encrypt_values(apps: Any, schema_editor: Any) -> None:
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.all().only("id", "custom_headers"):
        if provider.custom_headers:
            # The field reads plaintext (stored values pass through) and encrypts on save.
            Provider.objects.filter(pk=provider.pk).update(custom_headers=provider.custom_headers)


def decrypt_values(apps: Any, schema_editor: Any) -> None:
    Provider = apps.get_model("providers", "Provider")
    for provider in Provider.objects.all().only("id", "custom_headers"):
        if provider.custom_headers:
            _raw_write(Provider, provider.pk, provider.custom_headers)


class Migration(migrations.Migration):
    dependencies = [("providers", "0003_provider_anthropic_beta_allow")]

    operations = [
        migrations.AlterField(
            model_name="provider",
            name="custom_headers",
            field=providers.secrets.EncryptedHeadersField(
                blank=True,
                default=dict,
                help_text='Sent on every request to this instance, e.g. {"X-Cost-Center": "${CC}"}.',
            ),
        ),
        migrations.RunPython(encrypt_values, decrypt_values),
    ]
