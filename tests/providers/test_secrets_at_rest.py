"""Provider API keys are encrypted at rest, and the encryption key can be rotated."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from providers import secrets
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential

pytestmark = pytest.mark.django_db

PLAINTEXT = "sk-live-0123456789abcdef-PLAINTEXT"


def _raw_api_key(pk: int) -> str:
    """The column as the database stores it, bypassing the field's decryption."""
    table = connection.ops.quote_name(ProviderKeyCredential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {table} WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return str(value)


def _make_key(api_key: str = PLAINTEXT, name: str = "k1") -> ProviderKeyCredential:
    provider, _ = Provider.objects.get_or_create(name="openai-a", provider_type="openai")
    return ProviderKeyCredential.objects.create(provider=provider, key_name=name, api_key=api_key)


def _use_keys(settings, *keys: str) -> None:  # type: ignore[no-untyped-def]
    settings.FIELD_ENCRYPTION_KEYS = list(keys)
    secrets.reset_cipher()


def test_plaintext_never_reaches_the_database_and_reads_back() -> None:
    key = _make_key()
    raw = _raw_api_key(key.pk)

    assert PLAINTEXT not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert ProviderKeyCredential.objects.get(pk=key.pk).api_key == PLAINTEXT
    assert ProviderKeyCredential.objects.values_list("api_key", flat=True).get() == PLAINTEXT


def test_same_key_encrypts_differently_each_time() -> None:
    """Randomised tokens: equal keys are not recognisable as equal in the database."""
    a, b = _make_key(name="a"), _make_key(name="b")
    assert _raw_api_key(a.pk) != _raw_api_key(b.pk)


def test_old_key_still_decrypts_after_a_new_key_is_put_first(settings) -> None:  # type: ignore[no-untyped-def]
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _use_keys(settings, old)
    key = _make_key()
    token = _raw_api_key(key.pk)

    _use_keys(settings, new, old)

    assert ProviderKeyCredential.objects.get(pk=key.pk).api_key == PLAINTEXT
    assert Fernet(old.encode()).decrypt(token.encode()).decode() == PLAINTEXT


def test_rotate_command_lets_the_old_key_be_removed(settings) -> None:  # type: ignore[no-untyped-def]
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _use_keys(settings, old)
    keys = [_make_key(name="a"), _make_key(name="b", api_key="${OPENAI_KEY_B}")]
    Provider.objects.create(name="ollama", provider_type="ollama").keys.create(key_name="none")
    stamps = sorted(ProviderKeyCredential.objects.values_list("pk", "updated_at"))
    version = config_version_db()

    _use_keys(settings, new)  # without the old key the stored tokens are unreadable
    with pytest.raises(secrets.InvalidToken):
        ProviderKeyCredential.objects.get(pk=keys[0].pk)

    _use_keys(settings, new, old)
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 2 provider API key(s)" in out.getvalue()

    _use_keys(settings, new)
    assert ProviderKeyCredential.objects.get(pk=keys[0].pk).api_key == PLAINTEXT
    assert ProviderKeyCredential.objects.get(pk=keys[1].pk).api_key == "${OPENAI_KEY_B}"
    assert Fernet(new.encode()).decrypt(_raw_api_key(keys[0].pk).encode()).decode() == PLAINTEXT
    assert ProviderKeyCredential.objects.get(key_name="none").api_key == ""
    # Same plaintext, new ciphertext: not a configuration change.
    assert sorted(ProviderKeyCredential.objects.values_list("pk", "updated_at")) == stamps
    assert config_version_db() == version


def test_rotate_refuses_when_a_token_cannot_be_decrypted(settings) -> None:  # type: ignore[no-untyped-def]
    lost, kept, new = (Fernet.generate_key().decode() for _ in range(3))
    _use_keys(settings, lost)
    orphan = _make_key(name="orphan")
    _use_keys(settings, kept)
    good = _make_key(name="good")
    before = {k: _raw_api_key(k.pk) for k in (orphan, good)}

    _use_keys(settings, new, kept)
    with pytest.raises(
        CommandError, match=rf"1 provider key\(s\) cannot be decrypted.*ids {orphan.pk}"
    ):
        call_command("rotate_encryption_keys", stdout=StringIO())

    assert {k: _raw_api_key(k.pk) for k in (orphan, good)} == before  # all or nothing
