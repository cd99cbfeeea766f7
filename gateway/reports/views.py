"""Staff pages: the cost report (with CSV export) and provider health (with "check now").

Thin views: parse with :class:`~gateway.reports.params.ReportQuerySerializer`, read with the
selectors, render. Tables are plain HTML (no JavaScript); charts are server-rendered SVG.
"""

from __future__ import annotations

import csv
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from gateway.core.csvsafe import neutralise_cell
from gateway.keys.models import VirtualKey
from gateway.reports.charts import stacked_cost_chart
from gateway.reports.health import WINDOWS, health_rows
from gateway.reports.params import ReportQuerySerializer, clean_params
from gateway.reports.request_log import log_query_for_report_row
from gateway.reports.selectors import (
    GROUPINGS,
    PRESETS,
    CostReport,
    alias_choices,
    budget_lines,
    cost_report,
    utc_today,
)
from providers.models import Provider
from providers.types import ProviderType

CSV_COLUMNS = [
    "key",
    "label",
    "requests",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "avg_latency_ms",
    "cost",
    "priced_requests",
    "unpriced_requests",
]


def _report(request: HttpRequest) -> tuple[CostReport | None, dict[str, Any], Any]:
    params = clean_params(request.GET)
    serializer = ReportQuerySerializer(data=params)
    if not serializer.is_valid():
        return None, params, serializer.errors
    data = serializer.validated_data
    return cost_report(filters=data["filters"], group_by=data["group_by"]), params, None


@staff_member_required
@require_GET
def costs(request: HttpRequest) -> HttpResponse:
    report, params, errors = _report(request)
    context: dict[str, Any] = {
        "report": report,
        "errors": errors,
        "params": params,
        "groupings": [(k, v[0]) for k, v in GROUPINGS.items()],
        "presets": list(PRESETS.items()),
        "providers": Provider.objects.order_by("name"),
        "provider_types": ProviderType.choices,
        "virtual_keys": VirtualKey.objects.order_by("name"),
        "aliases": alias_choices(),
        "today": utc_today(),
    }
    if report is not None:
        query = report.filters.as_query()
        base = {k: v for k, v in params.items() if k not in ("start", "end", "preset")}
        context.update(
            preset_links=[
                (key, label, "?" + urlencode({**base, "preset": key}))
                for key, label in PRESETS.items()
            ],
            group_links=[
                (key, label, "?" + urlencode({**params, "group_by": key}))
                for key, (label, _) in GROUPINGS.items()
            ],
            chart=stacked_cost_chart(report),
            group_label=GROUPINGS[report.group_by][0],
            csv_url=reverse("ops-costs-csv")
            + "?"
            + urlencode({**query, "group_by": report.group_by}),
            json_url=reverse("api-report-costs")
            + "?"
            + urlencode({**query, "group_by": report.group_by}),
            budgets=budget_lines(virtual_key_id=report.filters.virtual_key_id),
            active_preset=params.get("preset") if not params.get("start") else None,
        )
        log_base = reverse("ops-requests")
        for row in report.rows:
            log_query = log_query_for_report_row(query, report.group_by, row.key)
            # The requests behind the row, for the template (a plain attribute on the row).
            row.log_url = log_base + "?" + urlencode(log_query) if log_query else ""  # type: ignore[attr-defined]
    return render(request, "ops/costs.html", context, status=400 if errors else 200)


@staff_member_required
@require_GET
def costs_csv(request: HttpRequest) -> HttpResponse:
    report, _, errors = _report(request)
    if report is None:
        return HttpResponse(
            f"invalid parameters: {errors}\n", status=400, content_type="text/plain"
        )
    f = report.filters
    name = f"costs_{report.group_by}_{f.start:%Y%m%d}_{f.end:%Y%m%d}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in [*report.rows, report.total]:
        values = row.as_dict()
        # Labels can be client-supplied text (a model name, a key name): never a formula.
        writer.writerow(
            ["" if values[c] is None else neutralise_cell(values[c]) for c in CSV_COLUMNS]
        )
    return response


@staff_member_required
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "24h")
    if window not in WINDOWS:
        messages.warning(request, f"Unknown window {window[:20]!r}; showing the last 24 h.")
        window = "24h"
    rows = health_rows(days=WINDOWS[window])
    summary = {
        "total": len(rows),
        "healthy": sum(1 for r in rows if r.status == "healthy" and r.enabled),
        "degraded": sum(1 for r in rows if r.status == "degraded" and r.enabled),
        "down": sum(1 for r in rows if r.status == "down" and r.enabled),
        "open": sum(1 for r in rows if r.circuit_state == "open"),
        "stale": sum(1 for r in rows if r.stale),
    }
    context = {"rows": rows, "summary": summary, "window": window, "windows": list(WINDOWS)}
    return render(request, "ops/health.html", context)


def _broker_configured() -> bool:
    return bool(getattr(settings, "CELERY_BROKER_URL", "")) and not getattr(
        settings, "CELERY_TASK_ALWAYS_EAGER", True
    )


@staff_member_required
@require_POST
def health_check_now(request: HttpRequest, provider_id: int) -> HttpResponse:
    """Probe one instance now: queued to Celery when a broker is configured, else inline."""
    # Imported here: the probe pulls in the adapters and the HTTP client.
    from providers.health import health_check_run
    from providers.tasks import health_check_task

    provider = get_object_or_404(Provider, pk=provider_id)
    if not provider.is_enabled:
        messages.warning(request, f"{provider.name} is disabled; enable it to probe it.")
    elif _broker_configured():
        health_check_task.delay(provider_id=provider.pk)
        messages.info(request, f"Probe of {provider.name} queued; reload in a few seconds.")
    else:
        result = health_check_run(provider_id=provider.pk)
        if result is not None:
            outcome = result.outcome
            latency = f" in {outcome.latency_ms:.0f} ms" if outcome.latency_ms is not None else ""
            detail = f" ({outcome.error_category})" if outcome.error_category else ""
            level = messages.SUCCESS if outcome.status == "healthy" else messages.WARNING
            messages.add_message(
                request, level, f"{provider.name}: {outcome.status}{latency}{detail}"
            )
    return HttpResponseRedirect(reverse("ops-health") + f"#provider-{provider.pk}")
