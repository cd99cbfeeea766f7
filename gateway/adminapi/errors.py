"""The one exception handler of the admin and report API: every error has one shape.

``{"error": {"type": ..., "message": ..., "fields": {...}}}`` with the DRF status code. A
Django ``ValidationError`` raised by a model's ``clean()`` (the same checks admin and import
run) becomes a 400 with the offending fields named; deleting a row that usage records protect
becomes a 409.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtectedError):
        # An instance or virtual key with recorded usage: deleting it would orphan cost history.
        exc = Conflict(
            f"cannot delete: {len(exc.protected_objects)} usage record(s) refer to it; "
            "disable it instead (is_enabled: false)"
        )
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
