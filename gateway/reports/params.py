"""The one parser of report parameters, shared by the page, the CSV and the JSON endpoints,
so all three answer the same filters with the same numbers."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from gateway.reports.selectors import GROUPINGS, PRESETS, ReportFilters, preset_range
from providers.types import ProviderType

MAX_DAYS = 366
#: Largest row id (a 64-bit primary key): a larger number is a 400, not a database overflow.
MAX_ID = 2**63 - 1


class IsoDateField(serializers.DateField):
    """A day as ``YYYY-MM-DD`` only (what the schema says), not the looser forms Django's
    parser also takes (``2026-1-1``)."""

    def to_internal_value(self, value: Any) -> Any:
        if not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class ReportQuerySerializer(serializers.Serializer):
    """Query parameters of a cost report. ``start``/``end`` (inclusive UTC days) override
    ``preset``; without either the last 30 days are shown."""

    preset = serializers.ChoiceField(choices=list(PRESETS.items()), required=False)
    start = IsoDateField(required=False)
    end = IsoDateField(required=False)
    group_by = serializers.ChoiceField(
        choices=[(k, v[0]) for k, v in GROUPINGS.items()], default="provider"
    )
    provider_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    provider_type = serializers.ChoiceField(choices=ProviderType.choices, required=False)
    virtual_key_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    model_alias = serializers.CharField(required=False, max_length=200)
    account_group = serializers.IntegerField(required=False, min_value=0, max_value=32)
    provider_key_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = preset_range(attrs.get("preset") or "30d")
        if attrs.get("start") or attrs.get("end"):
            start = attrs.get("start") or start
            end = attrs.get("end") or end
        if start > end:
            raise serializers.ValidationError({"end": "end must not be before start"})
        if (end - start).days >= MAX_DAYS:
            raise serializers.ValidationError({"start": f"at most {MAX_DAYS} days per report"})
        attrs["filters"] = ReportFilters(
            start=start,
            end=end,
            provider_id=attrs.get("provider_id"),
            provider_type=attrs.get("provider_type") or "",
            virtual_key_id=attrs.get("virtual_key_id"),
            model_alias=attrs.get("model_alias") or "",
            account_group=attrs.get("account_group"),
            provider_key_id=attrs.get("provider_key_id"),
        )
        return attrs


def clean_params(data: Any) -> dict[str, Any]:
    """Query dict without empty values (an HTML form sends every select, chosen or not)."""
    return {k: v for k, v in data.items() if v not in ("", None)}
