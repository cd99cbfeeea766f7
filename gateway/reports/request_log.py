"""Reads for the request log: filters, keyset pages (newest first), the live tail and the CSV.

Keyset, not OFFSET: a page is "the next N records older than the last one shown", found by one
range scan of the ``created_at`` index (ties broken by id) however deep the page, so the log
stays as fast at ten million records as at ten thousand (README, "Request log", has the
measured figure).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers

from gateway.usage.models import UsageRecord

PAGE_SIZE = 50
TAIL_LIMIT = 200
CSV_LIMIT = 100_000
STATUS_CLASSES = {"2xx": (200, 300), "4xx": (400, 500), "5xx": (500, 600)}
PLAYGROUND_ENDPOINT = "playground"
_RELATED = ("virtual_key", "provider", "provider_key")
_FIELDS = (
    "id",
    "request_id",
    "created_at",
    "endpoint",
    "model_alias",
    "account_group",
    "provider_model",
    "stream",
    "status_code",
    "error_type",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "cost",
    "virtual_key__name",
    "provider__name",
    "provider_key__key_name",
)


class RequestLogQuerySerializer(serializers.Serializer):
    """Query parameters of the request log, its tail and its CSV (one parser for all three)."""

    start = serializers.DateTimeField(required=False, help_text="UTC, inclusive")
    end = serializers.DateTimeField(required=False, help_text="UTC, exclusive")
    key = serializers.IntegerField(required=False, min_value=1, help_text="virtual key id")
    alias = serializers.CharField(required=False, max_length=200)
    instance = serializers.IntegerField(required=False, min_value=1, help_text="provider id")
    provider_key = serializers.IntegerField(required=False, min_value=1)
    provider_model = serializers.CharField(required=False, max_length=200)
    provider_type = serializers.CharField(required=False, max_length=32)
    group = serializers.IntegerField(required=False, min_value=0, max_value=32)
    status = serializers.ChoiceField(choices=list(STATUS_CLASSES), required=False)
    streamed = serializers.ChoiceField(choices=["yes", "no"], required=False)
    origin = serializers.ChoiceField(choices=["playground", "api"], required=False)
    before = serializers.IntegerField(required=False, min_value=1, help_text="page cursor")
    after = serializers.IntegerField(required=False, min_value=0, help_text="tail cursor")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start and end and start >= end:
            raise serializers.ValidationError({"end": "end must be after start"})
        return attrs


def filtered(params: dict[str, Any]) -> QuerySet[UsageRecord]:
    """Usage records matching validated ``params`` (every filter optional, combined with AND)."""
    qs = UsageRecord.objects.all()
    exact = {
        "key": "virtual_key_id",
        "alias": "model_alias",
        "instance": "provider_id",
        "provider_key": "provider_key_id",
        "provider_model": "provider_model",
        "provider_type": "provider__provider_type",
        "group": "account_group",
    }
    for param, column in exact.items():
        if params.get(param) not in (None, ""):
            qs = qs.filter(**{column: params[param]})
    if params.get("start"):
        qs = qs.filter(created_at__gte=params["start"])
    if params.get("end"):
        qs = qs.filter(created_at__lt=params["end"])
    if params.get("status"):
        low, high = STATUS_CLASSES[params["status"]]
        qs = qs.filter(status_code__gte=low, status_code__lt=high)
    if params.get("streamed"):
        qs = qs.filter(stream=params["streamed"] == "yes")
    if params.get("origin") == "playground":
        qs = qs.filter(endpoint=PLAYGROUND_ENDPOINT)
    elif params.get("origin") == "api":
        qs = qs.exclude(endpoint=PLAYGROUND_ENDPOINT)
    return qs


@dataclass
class LogPage:
    rows: list[dict[str, Any]]
    next_before: int | None  # cursor of the next (older) page; None on the last page
    newest_id: int  # the live tail asks for records after this one


def _rows(qs: QuerySet[UsageRecord]) -> list[dict[str, Any]]:
    rows = list(qs.values(*_FIELDS))
    for row in rows:
        row["trail"] = attempt_trail(row["attempts"])
    return rows


def log_page(params: dict[str, Any], *, size: int = PAGE_SIZE) -> LogPage:
    """One page, newest first, starting below the ``before`` cursor (a record id)."""
    qs = filtered(params)
    before = params.get("before")
    if before:
        cursor = UsageRecord.objects.filter(pk=before).values_list("created_at", flat=True).first()
        if cursor is not None:
            # (created_at, id) < (cursor, before), written so that the first condition bounds
            # an index range scan (an OR alone made PostgreSQL filter from the newest row on).
            qs = qs.filter(created_at__lte=cursor).filter(
                Q(created_at__lt=cursor) | Q(id__lt=before)
            )
    rows = _rows(qs.order_by("-created_at", "-id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    newest = max((r["id"] for r in rows), default=0) if before else _newest_id(rows)
    return LogPage(rows=rows, next_before=rows[-1]["id"] if more else None, newest_id=newest)


def _newest_id(rows: list[dict[str, Any]]) -> int:
    # On the first page the tail starts after the newest id in the table, so a record written
    # with an older request start (a slow stream) is still picked up by the tail.
    return max((r["id"] for r in rows), default=0) or (
        UsageRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0
    )


def log_tail(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Records written after the ``after`` id (oldest first), for the live tail."""
    qs = filtered(params).filter(id__gt=params.get("after") or 0)
    return _rows(qs.order_by("id")[:TAIL_LIMIT])


def log_rows_for_csv(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every matching record, newest first, at most ``CSV_LIMIT``, streamed from the database."""
    qs = filtered(params).order_by("-created_at", "-id").values(*_FIELDS)[:CSV_LIMIT]
    for row in qs.iterator(chunk_size=2000):
        row["trail"] = attempt_trail(row["attempts"])
        yield row


def log_record(record_id: int) -> UsageRecord | None:
    return UsageRecord.objects.select_related(*_RELATED).filter(pk=record_id).first()


@dataclass(frozen=True)
class TrailStep:
    instance: str
    key: str
    outcome: str  # "200", "429", or the error when there was no HTTP answer
    ok: bool
    duration_ms: float | None

    def __str__(self) -> str:
        key = f" ({self.key})" if self.key else ""
        took = f", {self.duration_ms:.0f} ms" if self.duration_ms is not None else ""
        return f"{self.instance}{key} → {self.outcome}{took}"


def attempt_trail(attempts: Any) -> list[TrailStep]:
    """The stored attempts (a JSON list) as readable steps; anything malformed is skipped."""
    steps = []
    for a in attempts if isinstance(attempts, list) else []:
        if not isinstance(a, dict):
            continue
        status = a.get("status")
        error = str(a.get("error") or "")
        outcome = f"{status} {error}".strip() if status is not None else (error or "no answer")
        duration = a.get("duration_ms")
        steps.append(
            TrailStep(
                instance=str(a.get("provider_name") or a.get("provider_id") or "?"),
                key=str(a.get("key_name") or ""),
                outcome=outcome,
                ok=isinstance(status, int) and 200 <= status < 300,
                duration_ms=float(duration) if isinstance(duration, int | float) else None,
            )
        )
    return steps


def trail_text(steps: list[TrailStep]) -> str:
    return " ⟶ ".join(str(s) for s in steps)


def row_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


# Cost-report grouping -> the request-log parameter holding the same value.
_GROUP_PARAMS = {
    "provider": "instance",
    "provider_type": "provider_type",
    "account_group": "group",
    "key": "provider_key",
    "alias": "alias",
    "provider_model": "provider_model",
    "virtual_key": "key",
}
_FILTER_PARAMS = {
    "provider_id": "instance",
    "provider_type": "provider_type",
    "virtual_key_id": "key",
    "model_alias": "alias",
    "account_group": "group",
    "provider_key_id": "provider_key",
}


def log_query_for_report_row(
    filters_query: dict[str, Any], group_by: str, row_key: str
) -> dict[str, str] | None:
    """Request-log parameters matching one cost-report row (its range, filters and group), or
    None when the row's group cannot be expressed as a log filter (records with no instance)."""
    start, end = filters_query["start"], filters_query["end"]
    if group_by == "day":
        start = end = row_key
    elif row_key == "":
        return None
    query = {
        "start": f"{start}T00:00",
        "end": (date.fromisoformat(end) + timedelta(days=1)).isoformat() + "T00:00",
    }
    for name, param in _FILTER_PARAMS.items():
        if name in filters_query:
            query[param] = str(filters_query[name])
    if group_by in _GROUP_PARAMS:
        query[_GROUP_PARAMS[group_by]] = row_key
    return query
