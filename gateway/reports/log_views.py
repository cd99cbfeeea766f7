"""Staff pages of the request log: the filtered list, one record, the live tail, the CSV.

Thin views over :mod:`gateway.reports.request_log`. Bad filter values give the page back with
the errors next to the values typed (status 400), never a bare error page.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from gateway.core.csvsafe import neutralise_cell
from gateway.keys.models import VirtualKey
from gateway.reports import request_log
from gateway.reports.params import clean_params
from gateway.reports.selectors import alias_choices
from providers.models import Provider

CSV_COLUMNS = [
    "time_utc",
    "request_id",
    "endpoint",
    "virtual_key",
    "alias",
    "instance",
    "provider_key",
    "provider_model",
    "account_group",
    "stream",
    "status",
    "error_type",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_ms",
    "ttft_ms",
    "attempts",
]
_CURSORS = ("before", "after")


def _parse(request: HttpRequest) -> tuple[dict[str, Any] | None, dict[str, Any], Any]:
    raw = clean_params(request.GET)
    serializer = request_log.RequestLogQuerySerializer(data=raw)
    if not serializer.is_valid():
        return None, raw, serializer.errors
    return serializer.validated_data, raw, None


def _filter_query(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in _CURSORS}


def _form_context(raw: dict[str, Any], errors: Any) -> dict[str, Any]:
    aliases = list(alias_choices())
    if raw.get("alias") and raw["alias"] not in aliases:
        aliases.append(raw["alias"])  # keep what was asked for selectable (and selected)
    return {
        "errors": errors,
        "params": raw,
        "virtual_keys": VirtualKey.objects.order_by("name").values("id", "name"),
        "providers": Provider.objects.order_by("name").values("id", "name"),
        "aliases": aliases,
        "status_classes": list(request_log.STATUS_CLASSES),
        "filter_count": len(_filter_query(raw)),
    }


@staff_member_required
@require_GET
def requests_page(request: HttpRequest) -> HttpResponse:
    params, raw, errors = _parse(request)
    query = _filter_query(raw)
    context = _form_context(raw, errors)
    if params is not None:
        page = request_log.log_page(params)
        qs = urlencode(query)
        context.update(
            page=page,
            csv_url=reverse("ops-requests-csv") + ("?" + qs if qs else ""),
            tail_url=reverse("ops-requests-tail") + "?" + urlencode({**query}),
            next_url="?" + urlencode({**query, "before": page.next_before})
            if page.next_before
            else "",
            first_url="?" + qs if raw.get("before") else "",
        )
    return render(request, "ops/requests.html", context, status=400 if errors else 200)


@staff_member_required
@require_GET
def requests_tail(request: HttpRequest) -> HttpResponse:
    """JSON for the live tail: rows newer than ``after`` (an id), pre-rendered as table rows."""
    params, _, errors = _parse(request)
    if params is None:
        return JsonResponse({"errors": errors}, status=400)
    rows = request_log.log_tail(params)
    html = render_to_string("ops/_request_rows.html", {"rows": list(reversed(rows))}, request)
    newest = max((r["id"] for r in rows), default=params.get("after") or 0)
    return JsonResponse({"count": len(rows), "newest_id": newest, "html": html})


@staff_member_required
@require_GET
def request_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    record = request_log.log_record(record_id)
    if record is None:
        raise Http404("no such request")
    return render(
        request,
        "ops/request_detail.html",
        {
            "r": record,
            "trail": request_log.attempt_trail(record.attempts),
            "playground": record.endpoint == request_log.PLAYGROUND_ENDPOINT,
            "back_url": reverse("ops-requests"),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(params: dict[str, Any]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for r in request_log.log_rows_for_csv(params):
        values = [
            request_log.row_time(r["created_at"]),
            r["request_id"],
            r["endpoint"],
            r["virtual_key__name"] or "",
            r["model_alias"],
            r["provider__name"] or "",
            r["provider_key__key_name"] or "",
            r["provider_model"],
            "" if r["account_group"] is None else r["account_group"],
            "yes" if r["stream"] else "no",
            r["status_code"],
            r["error_type"],
            r["prompt_tokens"],
            r["completion_tokens"],
            "" if r["cost"] is None else r["cost"],
            round(r["latency_ms"], 1),
            "" if r["ttft_ms"] is None else round(r["ttft_ms"], 1),
            request_log.trail_text(r["trail"]),
        ]
        # Every text cell came from a client or an admin: never let it run as a formula.
        yield writer.writerow([neutralise_cell(v) for v in values])


@staff_member_required
@require_GET
def requests_csv(request: HttpRequest) -> HttpResponseBase:
    params, raw, errors = _parse(request)
    if params is None:
        # Back to the page with the errors and the values typed, not a bare error.
        return render(request, "ops/requests.html", _form_context(raw, errors), status=400)
    response = StreamingHttpResponse(_csv_lines(params), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="requests.csv"'
    return response
