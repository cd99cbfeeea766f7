"""Pagination of the admin API: DRF's limit/offset, with its parameters checked.

DRF's own class ignores an unreadable ``limit`` or ``offset`` (answering another page than
asked) and passes a huge one to the database, which overflows (a 500). Here a parameter that
is not a non-negative integer in range is a 400 naming it.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

#: Largest offset accepted (a signed 32-bit integer: databases take it, no table is larger).
MAX_OFFSET = 2**31 - 1


def _count(request: Request, name: str, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise exceptions.ValidationError({name: [f"must be an integer from {low} to {high}"]})
    return int(raw)


class CheckedLimitOffsetPagination(LimitOffsetPagination):
    """``limit`` from 1 to ``max_limit`` (default page size when absent), ``offset`` >= 0."""

    max_limit = 1000

    def get_limit(self, request: Request) -> int | None:
        limit = _count(request, self.limit_query_param, 1, self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return _count(request, self.offset_query_param, 0, MAX_OFFSET) or 0
