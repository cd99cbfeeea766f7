"""Sample usage (30 days) for the offline demo: a new user sees a filled cost report and
health page.

Only for the demo's own virtual key and instances (``gateway/config_io/fixtures/demo.yaml``).
Idempotent: records have deterministic request ids (``demo-seed-<day>-<n>``) and are inserted
with ``ignore_conflicts``; rerunning later on the same day adds only the hours that have passed
since.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from gateway.keys.models import VirtualKey
from gateway.reports.services import rollups_update
from gateway.usage.models import UsageRecord
from mappings.models import ModelPrice, ModelProviderMapping
from providers.models import HealthCheck, HealthStatus, Provider

SEED_PREFIX = "demo-seed-"
DAYS = 30
MILLION = Decimal(1_000_000)


@dataclass
class DemoSeed:
    records: int
    health_checks: int
    days_rolled_up: int


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _price(mapping: ModelProviderMapping) -> ModelPrice | None:
    return mapping.prices.order_by("-effective_from").first()


@transaction.atomic
def demo_usage_seed(*, vkey_name: str = "demo", now: datetime | None = None) -> DemoSeed:
    """Insert a month of plausible usage for the demo key (and 24 h of probes)."""
    now = now or timezone.now()
    vkey = VirtualKey.objects.filter(name=vkey_name).first()
    mappings = list(
        ModelProviderMapping.objects.filter(provider__name__in=["mock-primary", "mock-secondary"])
        .select_related("provider")
        .prefetch_related("provider__keys")
    )
    if vkey is None or not mappings:
        return DemoSeed(0, 0, 0)
    prices = {m.pk: _price(m) for m in mappings}
    # Weighted choice: the priority-1 chat mapping carries most traffic.
    weights = [6 if m.priority == 1 and m.supports_chat else 2 for m in mappings]
    rows = []
    today = now.astimezone(UTC).date()
    seeded = set(
        UsageRecord.objects.filter(
            request_id__startswith=SEED_PREFIX, created_at__lt=_midnight(today)
        )
        .values_list("request_id", flat=True)
        .order_by()
    )
    seeded_days = {rid[len(SEED_PREFIX) : len(SEED_PREFIX) + 8] for rid in seeded}
    for offset in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=offset)
        if day < today and f"{day:%Y%m%d}" in seeded_days:
            continue  # a past day is seeded whole at once: nothing to add
        rows.extend(_day_records(day, now, vkey, mappings, weights, prices))
    before = UsageRecord.objects.filter(request_id__startswith=SEED_PREFIX).count()
    UsageRecord.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    added = UsageRecord.objects.filter(request_id__startswith=SEED_PREFIX).count() - before
    checks = _health_checks(now)
    rolled = rollups_update(days_back=DAYS + 1, today=today)
    return DemoSeed(added, checks, len(rolled))


def _day_records(
    day: date,
    now: datetime,
    vkey: VirtualKey,
    mappings: list[ModelProviderMapping],
    weights: list[int],
    prices: dict[int, ModelPrice | None],
) -> list[UsageRecord]:
    rng = random.Random(day.toordinal())  # noqa: S311 - sample data, not security
    weekday_factor = 0.5 if day.weekday() >= 5 else 1.0
    growth = 1.4 - 0.6 * (now.astimezone(UTC).date() - day).days / DAYS  # traffic grows
    count = int(rng.randint(110, 170) * weekday_factor * growth)
    out = []
    for n in range(count):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randint(0, 86_399)
        )
        if at > now:
            continue
        mapping = rng.choices(mappings, weights)[0]
        keys = list(mapping.provider.keys.all())
        key = rng.choice(keys) if keys else None
        embed = mapping.supports_embeddings and not mapping.supports_chat
        prompt = rng.randint(20, 600) if embed else rng.randint(400, 12000)
        completion = 0 if embed else rng.randint(100, 2400)
        status, error = 200, ""
        roll = rng.random()
        if roll < 0.03:
            status, error = 502, "upstream_error"
        elif roll < 0.05:
            status, error = 429, "rate_limited"
        provider_model = mapping.provider_model_id
        price = prices.get(mapping.pk)
        if status != 200:
            prompt = completion = 0
            cost: Decimal | None = Decimal(0)
        elif not embed and rng.random() < 0.04:
            # A model the instance served without a price on file: shown as unpriced.
            provider_model = f"{mapping.provider_model_id}-preview"
            cost = None
        elif price is None:
            cost = None
        else:
            cost = (
                Decimal(prompt) * price.input_per_million
                + Decimal(completion) * price.output_per_million
            ) / MILLION
        latency = rng.lognormvariate(6.2 if not embed else 4.5, 0.5)
        out.append(
            UsageRecord(
                request_id=f"{SEED_PREFIX}{day:%Y%m%d}-{n:05d}",
                created_at=at,
                endpoint="embeddings" if embed else "chat",
                virtual_key=vkey,
                model_alias=mapping.model_alias,
                provider=mapping.provider,
                provider_key=key,
                mapping=mapping,
                account_group=key.account_group if key else None,
                provider_model=provider_model,
                stream=rng.random() < 0.4,
                status_code=status,
                error_type=error,
                prompt_tokens=prompt,
                completion_tokens=completion,
                latency_ms=round(latency, 1),
                ttft_ms=None if embed else round(latency * 0.3, 1),
                cost=cost,
            )
        )
    return out


def _health_checks(now: datetime) -> int:
    """24 h of probe history (every 30 min) for the demo instances that have none yet."""
    added = 0
    for provider in Provider.objects.filter(name__in=["mock-primary", "mock-secondary"]):
        if HealthCheck.objects.filter(provider=provider).exists():
            continue
        rng = random.Random(provider.name)  # noqa: S311 - sample data
        base = 40.0 if provider.name == "mock-primary" else 85.0
        checks = []
        for i in range(48):
            latency = rng.gauss(base, base * 0.2)
            status = HealthStatus.HEALTHY
            if provider.name == "mock-secondary" and i in (17, 18):
                status, latency = HealthStatus.DEGRADED, 6200.0
            checks.append(
                HealthCheck(
                    provider=provider,
                    status=status,
                    probe=provider.health_check_probe,
                    latency_ms=round(max(latency, 5.0), 1),
                    http_status=200,
                    error_category="slow" if status == HealthStatus.DEGRADED else "",
                    checked_at=now - timedelta(minutes=30 * (48 - i)),
                )
            )
        HealthCheck.objects.bulk_create(checks)
        added += len(checks)
    return added
