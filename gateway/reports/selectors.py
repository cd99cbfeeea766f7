"""Reads for cost reports: one computation behind the page, the CSV and the JSON endpoints.

Past days come from :class:`~gateway.reports.models.DailyUsageRollup` (days listed in
:class:`~gateway.reports.models.RollupDay`); from the first day that is not rolled up (normally
today) to the end of the range, the raw usage records are aggregated instead. Both sources are
grouped by the same dimensions, so the numbers are identical whichever one answered (the tests
prove it).

Days are UTC days. Cost sums only priced records; unpriced records are counted separately and
are never folded into the cost as $0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from gateway.keys.models import VirtualKey
from gateway.reports.models import DailyUsageRollup, RollupDay
from gateway.usage.events import UNKNOWN_MODEL
from gateway.usage.models import UsageRecord
from mappings.models import ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential

COST_PLACES = Decimal("0.000001")

# group_by value -> (label, dimension column shared by raw records and rollups)
GROUPINGS: dict[str, tuple[str, str]] = {
    "provider": ("Provider instance", "provider_id"),
    "provider_type": ("Provider type", "provider_id"),
    "account_group": ("Account group", "account_group"),
    "key": ("Provider key", "provider_key_id"),
    "alias": ("Model alias", "model_alias"),
    "provider_model": ("Provider model", "provider_model"),
    "virtual_key": ("Virtual key (app)", "virtual_key_id"),
    "day": ("Day", "day"),
}
PRESETS: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "this_month": "This month",
    "last_month": "Last month",
}


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


def preset_range(preset: str, *, today: date | None = None) -> tuple[date, date]:
    """(first day, last day), both inclusive, of a named range."""
    today = today or utc_today()
    if preset == "today":
        return today, today
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return today - timedelta(days=29), today  # 30d, the default


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers. Every filter is optional; they combine with AND."""

    start: date
    end: date  # inclusive
    provider_id: int | None = None
    provider_type: str = ""
    virtual_key_id: int | None = None
    model_alias: str = ""
    account_group: int | None = None
    provider_key_id: int | None = None

    def as_query(self) -> dict[str, Any]:
        """The filters as query parameters (for links to CSV/JSON with the same filters)."""
        out: dict[str, Any] = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        for name in (
            "provider_id",
            "provider_type",
            "virtual_key_id",
            "model_alias",
            "account_group",
            "provider_key_id",
        ):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value
        return out


@dataclass
class ReportRow:
    """Totals of one group (or of the whole report)."""

    key: str
    label: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_sum: float = 0.0
    cost: Decimal = Decimal(0)
    unpriced_requests: int = 0

    def add(self, values: dict[str, Any]) -> None:
        self.requests += int(values["requests"] or 0)
        self.errors += int(values["errors"] or 0)
        self.prompt_tokens += int(values["prompt_sum"] or 0)
        self.completion_tokens += int(values["completion_sum"] or 0)
        self.latency_ms_sum += float(values["latency_ms_sum"] or 0)
        self.cost += Decimal(str(values["cost_sum"] or 0))
        self.unpriced_requests += int(values["unpriced_requests"] or 0)

    @property
    def cost_rounded(self) -> Decimal:
        return self.cost.quantize(COST_PLACES)

    @property
    def priced_requests(self) -> int:
        return self.requests - self.unpriced_requests

    @property
    def all_unpriced(self) -> bool:
        """Nothing in this group had a price: its cost is unknown, not zero."""
        return self.requests > 0 and self.priced_requests == 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON and CSV (cost as a decimal string, never a float)."""
        avg = self.avg_latency_ms
        return {
            "key": self.key,
            "label": self.label,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "avg_latency_ms": round(avg, 1) if avg is not None else None,
            # Unknown, not zero: a group with no priced request has no cost to show.
            "cost": None if self.all_unpriced else str(self.cost_rounded),
            "priced_requests": self.priced_requests,
            "unpriced_requests": self.unpriced_requests,
        }


@dataclass
class CostReport:
    filters: ReportFilters
    group_by: str
    rows: list[ReportRow]
    total: ReportRow
    days: list[date]
    # group key -> cost per day (same order as ``days``)
    series: dict[str, list[Decimal]] = field(default_factory=dict)
    rollup_until: date | None = None  # rollups answered days before this one


USAGE_AGGREGATES: dict[str, Any] = {
    "requests": Count("id"),
    "errors": Count("id", filter=Q(status_code__gte=400)),
    "unpriced_requests": Count("id", filter=Q(cost__isnull=True)),
    # Output names differ from the column names: an annotation may not shadow a column that
    # another aggregate (the unpriced filter on ``cost``) still refers to.
    "prompt_sum": Sum("prompt_tokens"),
    "completion_sum": Sum("completion_tokens"),
    "latency_ms_sum": Sum("latency_ms"),
    "cost_sum": Sum("cost"),
}
ROLLUP_AGGREGATES: dict[str, Any] = {
    "requests": Sum("requests"),
    "errors": Sum("errors"),
    "unpriced_requests": Sum("unpriced_requests"),
    "prompt_sum": Sum("prompt_tokens"),
    "completion_sum": Sum("completion_tokens"),
    "latency_ms_sum": Sum("latency_ms_sum"),
    "cost_sum": Sum("cost"),
}


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def alias_choices() -> list[str]:
    """Aliases to filter by: the configured ones and those used in the last 90 days.

    Read from mappings and rollups, not from the usage table (a DISTINCT over millions of rows).
    """
    configured = set(ModelProviderMapping.objects.values_list("model_alias", flat=True))
    used = set(
        DailyUsageRollup.objects.filter(day__gte=utc_today() - timedelta(days=90))
        .exclude(model_alias="")
        .values_list("model_alias", flat=True)
        .distinct()
    )
    return sorted(configured | used)


def rollup_until(*, start: date, end: date) -> date:
    """The first day in ``[start, end]`` not rolled up (rollups answer the days before it)."""
    rolled = set(
        RollupDay.objects.filter(day__gte=start, day__lte=end).values_list("day", flat=True)
    )
    day = start
    while day <= end and day in rolled and day < utc_today():
        day += timedelta(days=1)
    return day


def _filtered(qs: QuerySet[Any], filters: ReportFilters) -> QuerySet[Any]:
    if filters.provider_id is not None:
        qs = qs.filter(provider_id=filters.provider_id)
    if filters.provider_type:
        ids = Provider.objects.filter(provider_type=filters.provider_type).values_list(
            "id", flat=True
        )
        qs = qs.filter(provider_id__in=list(ids))
    if filters.virtual_key_id is not None:
        qs = qs.filter(virtual_key_id=filters.virtual_key_id)
    if filters.model_alias:
        qs = qs.filter(model_alias=filters.model_alias)
    if filters.account_group is not None:
        qs = qs.filter(account_group=filters.account_group)
    if filters.provider_key_id is not None:
        qs = qs.filter(provider_key_id=filters.provider_key_id)
    return qs


def usage_buckets(
    *, filters: ReportFilters, dimension: str, use_rollups: bool = True
) -> tuple[list[dict[str, Any]], date]:
    """Aggregates per (dimension value, day) for the range; and the day rollups stopped at.

    ``use_rollups=False`` reads raw records only (the reference the tests compare against).
    """
    until = rollup_until(start=filters.start, end=filters.end) if use_rollups else filters.start
    out: list[dict[str, Any]] = []
    if until > filters.start:
        rollups = _filtered(
            DailyUsageRollup.objects.filter(day__gte=filters.start, day__lt=until), filters
        )
        dims = ["day"] if dimension == "day" else [dimension, "day"]
        out.extend(rollups.values(*dims).annotate(**ROLLUP_AGGREGATES).order_by())
    if until <= filters.end:
        raw = _filtered(
            UsageRecord.objects.filter(
                created_at__gte=day_start(until),
                created_at__lt=day_start(filters.end + timedelta(days=1)),
            ),
            filters,
        ).annotate(day=TruncDate("created_at", tzinfo=UTC))
        dims = ["day"] if dimension == "day" else [dimension, "day"]
        out.extend(raw.values(*dims).annotate(**USAGE_AGGREGATES).order_by())
    return out, until


#: Aliases that are not a configured alias: requests naming no model, or one the route table
#: did not know (recorded as UNKNOWN_MODEL, never as the client's string).
ALIAS_LABELS = {"": "(none)", UNKNOWN_MODEL: "(unknown model)"}


def _labels(group_by: str, keys: Iterable[Any]) -> dict[Any, tuple[str, str]]:
    """Group key -> (stable key, readable label)."""
    keys = list(keys)
    ids = [k for k in keys if isinstance(k, int)]
    if group_by in ("provider", "provider_type"):
        names = {p.id: p for p in Provider.objects.filter(id__in=ids)}
        if group_by == "provider_type":
            return {
                k: (names[k].provider_type, names[k].get_provider_type_display())
                if k in names
                else ("", "(unknown)")
                for k in keys
            }
        return {
            k: (str(k), names[k].name if k in names else f"deleted instance #{k}")
            if k is not None
            else ("", "(no instance)")
            for k in keys
        }
    if group_by == "key":
        # values_list: names only; loading the model would decrypt every api_key for nothing.
        creds = {
            pk: f"{provider}/{name}"
            for pk, name, provider in ProviderKeyCredential.objects.filter(id__in=ids).values_list(
                "id", "key_name", "provider__name"
            )
        }
        return {
            k: (str(k), creds.get(k, f"deleted key #{k}")) if k is not None else ("", "(no key)")
            for k in keys
        }
    if group_by == "virtual_key":
        vkeys = dict(VirtualKey.objects.filter(id__in=ids).values_list("id", "name"))
        return {
            k: (str(k), vkeys.get(k, f"deleted key #{k}")) if k is not None else ("", "(none)")
            for k in keys
        }
    if group_by == "account_group":
        return {k: (str(k), f"Group {k}") if k is not None else ("", "(none)") for k in keys}
    if group_by == "day":
        return {k: (k.isoformat(), k.strftime("%a %d %b %Y")) for k in keys}
    if group_by == "alias":
        return {k: (k or "", ALIAS_LABELS.get(k or "", k)) for k in keys}
    return {k: (k or "", k or "(none)") for k in keys}


def cost_report(*, filters: ReportFilters, group_by: str, use_rollups: bool = True) -> CostReport:
    """The report for ``filters`` grouped by ``group_by`` (a key of :data:`GROUPINGS`)."""
    if group_by not in GROUPINGS:
        raise ValueError(f"unknown grouping {group_by!r}")
    dimension = GROUPINGS[group_by][1]
    buckets, until = usage_buckets(filters=filters, dimension=dimension, use_rollups=use_rollups)
    labels = _labels(group_by, {b[dimension] for b in buckets})
    days = [
        filters.start + timedelta(days=i) for i in range((filters.end - filters.start).days + 1)
    ]
    day_index = {d: i for i, d in enumerate(days)}
    rows: dict[str, ReportRow] = {}
    series: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(days))
    total = ReportRow(key="total", label="Total")
    for bucket in buckets:
        key, label = labels[bucket[dimension]]
        row = rows.setdefault(key, ReportRow(key=key, label=label))
        row.add(bucket)
        total.add(bucket)
        day = bucket["day"]
        if isinstance(day, datetime):
            day = day.date()
        if day in day_index:
            series[key][day_index[day]] += Decimal(str(bucket["cost_sum"] or 0))
    if group_by == "day":
        ordered = sorted(rows.values(), key=lambda r: r.key)
    else:
        ordered = sorted(rows.values(), key=lambda r: (-r.cost, -r.requests, r.label))
    return CostReport(
        filters=filters,
        group_by=group_by,
        rows=ordered,
        total=total,
        days=days,
        series=dict(series),
        rollup_until=until,
    )


@dataclass
class BudgetLine:
    virtual_key: VirtualKey
    period_start: date
    spend: Decimal
    amount: Decimal
    unpriced_requests: int

    @property
    def fraction(self) -> float:
        return float(self.spend / self.amount) if self.amount else 1.0

    @property
    def percent_capped(self) -> float:
        return min(self.fraction, 1.0) * 100

    @property
    def level(self) -> str:
        threshold = float(self.virtual_key.budget_alert_threshold)
        if self.fraction >= 1:
            return "over"
        return "warn" if self.fraction >= threshold else "ok"


def budget_lines(*, virtual_key_id: int | None = None) -> list[BudgetLine]:
    """Spend of the current budget period against the budget, for keys that have one."""
    keys = VirtualKey.objects.filter(budget_amount__isnull=False).order_by("name")
    if virtual_key_id is not None:
        keys = keys.filter(pk=virtual_key_id)
    today = utc_today()
    lines = []
    for vkey in keys:
        if vkey.budget_period == "daily":
            start = today
        elif vkey.budget_period == "monthly":
            start = today.replace(day=1)
        else:
            start = vkey.created_at.astimezone(UTC).date()
        report = cost_report(
            filters=ReportFilters(start=start, end=today, virtual_key_id=vkey.pk),
            group_by="virtual_key",
        )
        assert vkey.budget_amount is not None
        lines.append(
            BudgetLine(
                virtual_key=vkey,
                period_start=start,
                spend=report.total.cost_rounded,
                amount=vkey.budget_amount,
                unpriced_requests=report.total.unpriced_requests,
            )
        )
    return lines
