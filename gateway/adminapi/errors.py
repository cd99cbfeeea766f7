"""The one exception handler of the admin and report API: every error has one shape.

``{"error": {"type": ..., "message": ..., "fields": {...}}}`` with the DRF status code. A
Django ``ValidationError`` raised by a model's ``clean()`` (the same checks admin and import
run) becomes a 400 with the offending fields named; deleting a row that usage records protect
becomes a 409, and so does deleting a price in effect. An invalid provider instance or key
(``providers.services.ProviderInvalid``) names the instance's fields, and each key's fields
under ``keys`` by key name.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from mappings.services import PriceLocked
from providers.services import ErrorDict, ProviderInvalid


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field_name, value in detail.items():
            inner = _message(value)
            return (
                inner if field_name in ("detail", "non_field_errors") else f"{field_name}: {inner}"
            )
        return "invalid request"
    if isinstance(detail, list):
        return _message(detail[0]) if detail else "invalid request"
    return str(detail)


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "the object is in use"
    default_code = "conflict"


def _fields(errors: ErrorDict) -> dict[str, list[str]]:
    return {
        api_settings.NON_FIELD_ERRORS_KEY if name == NON_FIELD_ERRORS else name: [
            message for error in field_errors for message in error.messages
        ]
        for name, field_errors in errors.items()
    }


def provider_invalid_detail(exc: ProviderInvalid, *, nested_keys: bool = True) -> dict[str, Any]:
    """DRF error detail of an invalid instance or key: fields named, keys by ``key_name``.

    ``nested_keys=False`` (one key saved on its own) puts the key's fields at the top level.
    """
    detail: dict[str, Any] = _fields(exc.provider_errors)
    for index, errors in sorted(exc.key_errors.items()):
        if nested_keys:
            name = exc.key_objects[index].key_name or str(index)
            detail.setdefault("keys", {})[name] = _fields(errors)
        else:
            detail.update(_fields(errors))
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtectedError):
        # An instance or virtual key with recorded usage: deleting it would orphan cost history.
        exc = Conflict(
            f"cannot delete: {len(exc.protected_objects)} usage record(s) refer to it; "
            "disable it instead (is_enabled: false)"
        )
    elif isinstance(exc, PriceLocked):
        exc = Conflict(f"cannot delete: {exc}")
    elif isinstance(exc, ProviderInvalid):
        exc = exceptions.ValidationError(provider_invalid_detail(exc))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    error: dict[str, Any] = {
        "type": getattr(exc, "default_code", "error"),
        "message": _message(detail),
    }
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        error["fields"] = detail
    response.data = {"error": error}
    return response
