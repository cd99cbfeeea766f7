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
from django.db import models

__all__ = [
    "EncryptedTextField",
    "InvalidToken",
    "Undecryptable",
    "decrypt",
    "encrypt",
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
