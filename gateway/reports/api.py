"""JSON report endpoints under /api/reports/ (staff session or API token).

Same parser and selector as the page and the CSV, so the numbers are the same.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.reports.health import health_rows
from gateway.reports.params import ReportQuerySerializer, clean_params
from gateway.reports.selectors import budget_lines, cost_report


class CostRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    # "label" and "errors" shadow Serializer attributes in the type stubs only.
    label = serializers.CharField()  # type: ignore[assignment]
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]
    error_rate = serializers.FloatField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    avg_latency_ms = serializers.FloatField(allow_null=True)
    cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=6,
        allow_null=True,
        coerce_to_string=True,
        help_text="Sum of priced requests in USD; null when no request had a price.",
    )
    priced_requests = serializers.IntegerField()
    unpriced_requests = serializers.IntegerField()


class CostSeriesSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    cost_per_day = serializers.ListField(child=serializers.CharField())


class BudgetLineSerializer(serializers.Serializer):
    virtual_key_id = serializers.IntegerField()
    virtual_key = serializers.CharField()
    period_start = serializers.DateField()
    spend = serializers.CharField()
    amount = serializers.CharField()
    fraction = serializers.FloatField()


class CostReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField()
    filters = serializers.DictField(help_text="The filters applied (query parameter names).")
    total = CostRowSerializer()
    rows = CostRowSerializer(many=True)
    days = serializers.ListField(child=serializers.DateField())
    series = CostSeriesSerializer(many=True, help_text="Cost per day of each group.")
    budgets = BudgetLineSerializer(many=True)


class CostReportView(APIView):
    """Cost, tokens, requests, error rate and latency per group, with daily cost series."""

    OutputSerializer = CostReportSerializer
    # Costs are read from usage records: whoever may view those may read the report.
    required_permissions = ("usage.view_usagerecord",)

    @extend_schema(parameters=[ReportQuerySerializer], responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        query = ReportQuerySerializer(data=clean_params(request.query_params))
        query.is_valid(raise_exception=True)
        report = cost_report(
            filters=query.validated_data["filters"], group_by=query.validated_data["group_by"]
        )
        labels = {r.key: r.label for r in report.rows}
        body = {
            "start": report.filters.start,
            "end": report.filters.end,
            "group_by": report.group_by,
            "filters": report.filters.as_query(),
            "total": report.total.as_dict(),
            "rows": [r.as_dict() for r in report.rows],
            "days": report.days,
            "series": [
                {"key": k, "label": labels.get(k, k), "cost_per_day": [str(c) for c in v]}
                for k, v in report.series.items()
            ],
            "budgets": [
                {
                    "virtual_key_id": b.virtual_key.pk,
                    "virtual_key": b.virtual_key.name,
                    "period_start": b.period_start,
                    "spend": str(b.spend),
                    "amount": str(b.amount),
                    "fraction": round(b.fraction, 4),
                }
                for b in budget_lines(virtual_key_id=report.filters.virtual_key_id)
            ],
        }
        return Response(self.OutputSerializer(body).data)


class ProviderHealthSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.CharField()
    enabled = serializers.BooleanField()
    status = serializers.CharField()
    circuit_state = serializers.CharField()
    failure_count = serializers.IntegerField()
    latency_ms = serializers.FloatField(allow_null=True)
    last_checked = serializers.DateTimeField(allow_null=True)
    checks_24h = serializers.IntegerField()
    uptime_24h = serializers.FloatField(allow_null=True)
    interval_s = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="last probe older than twice the interval")
    stale_reason = serializers.CharField()
    last_error = serializers.CharField(help_text="last probe error in the window, redacted")
    last_error_at = serializers.DateTimeField(allow_null=True)


class HealthReportView(APIView):
    """Per-instance health with 24 h probe counts and uptime (the health page's data)."""

    OutputSerializer = ProviderHealthSerializer
    required_permissions = ("providers.view_healthcheck",)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(health_rows(), many=True).data)
