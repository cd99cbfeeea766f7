"""Encryption of provider API keys at rest.

Keys are encrypted with :class:`cryptography.fernet.MultiFernet` built from
``settings.FIELD_ENCRYPTION_KEYS``: the first key encrypts, every key decrypts, so rotation is
"put the new key first, re-encrypt (``manage.py rotate_encryption_keys``), drop the old key".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

from providers.envsubst import has_reference
from providers.validators import HEADER_MASK

__all__ = [
    "EncryptedHeadersField",
    "EncryptedTextField",
    "InvalidToken",
    "Undecryptable",
    "decrypt",
    "encrypt",
    "headers_masked",
    "headers_unmasked",
    "reset_cipher",
    "rotate",
    "tolerant_decryption",
]

_tolerant: ContextVar[bool] = ContextVar("tolerant_decryption", default=False)


class Undecryptable(str):
    """Read in place of a stored value that no configured key decrypts (only inside
    :func:`tolerant_decryption`). It is the empty string, so nothing can use it as a secret,
    and it keeps the stored token, so saving the row unchanged writes that token back."""

    token: str

    def __new__(cls, token: str) -> Undecryptable:
        value = super().__new__(cls, "")
        value.token = token
        return value


@contextmanager
def tolerant_decryption() -> Iterator[None]:
    """Within the block, an undecryptable value reads as :class:`Undecryptable` instead of
    raising ``InvalidToken``: one bad row must not hide every other (route table, admin)."""
    token = _tolerant.set(True)
    try:
        yield
    finally:
        _tolerant.reset(token)


@lru_cache(maxsize=1)
def _cipher() -> MultiFernet:
    keys = settings.FIELD_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:  # wrong length / not urlsafe base64
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold keys as Fernet.generate_key() prints them"
        ) from exc


def reset_cipher() -> None:
    """Forget the cached cipher (after FIELD_ENCRYPTION_KEYS changed, e.g. in tests)."""
    _cipher.cache_clear()


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings and pytest-django's ``settings`` fixture announce both the change and
    # its undoing; without this, the cipher of a finished override would keep encrypting.
    if setting == "FIELD_ENCRYPTION_KEYS":
        reset_cipher()


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first configured key; returns a Fernet token."""
    return _cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a token made with any configured key. Raises ``InvalidToken`` otherwise."""
    return _cipher().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the first (newest) key."""
    return _cipher().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column that holds a Fernet token and reads back as plaintext.

    The database never sees the plaintext: ``get_prep_value`` encrypts on the way in and
    ``from_db_value`` decrypts on the way out. Lookups on this field are meaningless (tokens are
    randomised) and are not supported.
    """

    description = "Text encrypted at rest with Fernet"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            if _tolerant.get():
                return Undecryptable(value)
            raise

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Undecryptable):
            return value.token  # unchanged: still readable once its key is configured again
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))


# --- custom header values ----------------------------------------------------------------------

# Marks an encrypted header value in the stored JSON; any other value is stored as written.
HEADER_TOKEN_PREFIX = "fernet:"


def header_value_encrypt(value: Any) -> Any:
    """A literal header value as stored: a prefixed Fernet token. ``${VAR}`` values (references,
    not secrets) and non-strings are stored as they are."""
    if isinstance(value, Undecryptable):
        return value.token  # unchanged: still readable once its key is configured again
    if not isinstance(value, str) or not value or has_reference(value):
        return value
    return HEADER_TOKEN_PREFIX + encrypt(value)


def header_value_decrypt(value: Any) -> Any:
    """The plaintext of a stored header value (values stored before encryption pass through)."""
    if isinstance(value, str) and value.startswith(HEADER_TOKEN_PREFIX):
        try:
            return decrypt(value[len(HEADER_TOKEN_PREFIX) :])
        except InvalidToken:
            if _tolerant.get():
                return Undecryptable(value)
            raise
    return value


def header_value_masked(value: Any) -> Any:
    """What a read may show of a header value: a ``${VAR}`` reference as is, else a mask with
    the last four characters of a long value."""
    if isinstance(value, Undecryptable):
        return HEADER_MASK + " (cannot decrypt)"  # sent back as is, the stored token stays
    if not isinstance(value, str) or not value or has_reference(value):
        return value
    return HEADER_MASK + value[-4:] if len(value) >= 12 else HEADER_MASK


def headers_masked(headers: Any) -> Any:
    """``headers`` with every literal value masked (:func:`header_value_masked`)."""
    if not isinstance(headers, dict):
        return headers
    return {name: header_value_masked(value) for name, value in headers.items()}


def headers_unmasked(given: Any, stored: Any) -> Any:
    """``given`` with each value still equal to the mask of the stored value of that header
    (case-insensitive name) replaced by the stored value: sending back what a read showed keeps
    the secret. A masked value that matches nothing stored is left for validation to refuse."""
    if not isinstance(given, dict) or not isinstance(stored, dict):
        return given
    by_name = {str(k).lower(): v for k, v in stored.items()}
    out: dict[Any, Any] = {}
    for name, value in given.items():
        old = by_name.get(str(name).lower())
        if isinstance(value, str) and value.startswith(HEADER_MASK) and old is not None:
            out[name] = old if header_value_masked(old) == value else value
        else:
            out[name] = value
    return out


class EncryptedHeadersField(models.JSONField):
    """A JSON object of header name -> value whose literal values are encrypted at rest.

    Reads back as plaintext (like :class:`EncryptedTextField`); in the database each literal
    value is ``fernet:<token>``, while ``${VAR}`` references stay readable.
    """

    description = "JSON header object with values encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        data = super().from_db_value(value, expression, connection)
        if isinstance(data, dict):
            return {name: header_value_decrypt(v) for name, v in data.items()}
        return data

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            value = {name: header_value_encrypt(v) for name, v in value.items()}
        return super().get_prep_value(value)
