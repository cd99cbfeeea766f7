"""Cost report benchmark: a 30-day report over 1,000,000 usage records.

    python bench/reports_bench.py [--records 1000000] [--days 30] [--reuse]

Uses ``DATABASE_URL`` when set (give it a throwaway database: the benchmark migrates it and
replaces its usage records), else a fresh SQLite file in a temporary directory. It generates
the records (20 instances, 60 keys, 12 aliases, 200 virtual keys, 3% errors, 5% unpriced)
spread over the last ``--days`` days (correlated like real traffic: each app uses two aliases,
each alias two instances), builds the daily rollups (what the Celery task does),
then times the report: the selector for every grouping, and the whole staff page (HTML with the
chart) and the CSV, each the median of 5 runs. Raw aggregation without rollups is timed once
for comparison. Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup(tmp: Path) -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'reports_bench.sqlite3'}"
        os.environ.setdefault("GATEWAY_STATE_DIR", str(tmp))
    # With a DATABASE_URL the usual state dir (var/) keeps the encryption key, so --reuse can
    # read the keys an earlier run stored.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _timed(fn: Any, runs: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def generate(n: int, days: int) -> dict[str, Any]:
    from django.db import connection, transaction

    from gateway.keys.models import VirtualKey
    from gateway.keys.services import virtual_key_create
    from gateway.reports.models import DailyUsageRollup, RollupDay
    from gateway.usage.models import UsageRecord
    from providers.models import Provider, ProviderKeyCredential

    with transaction.atomic():
        UsageRecord.objects.all().delete()
        DailyUsageRollup.objects.all().delete()
        RollupDay.objects.all().delete()
    providers = []
    for i in range(20):
        p, _ = Provider.objects.get_or_create(
            name=f"bench-{i:02d}",
            defaults={"provider_type": ["openai", "anthropic", "mock"][i % 3]},
        )
        providers.append(p)
    keys = []
    for p in providers:
        for j in range(3):
            k, _ = ProviderKeyCredential.objects.get_or_create(
                provider=p,
                key_name=f"k{j}",
                defaults={"api_key": f"sk-{p.pk}-{j}", "account_group": j},
            )
            keys.append(k)
    vkeys = list(VirtualKey.objects.filter(name__startswith="bench-app-"))
    for i in range(len(vkeys), 200):
        vkeys.append(virtual_key_create(name=f"bench-app-{i:03d}")[0])
    aliases = [f"model-{i}" for i in range(12)]
    rng = random.Random(1)
    # Traffic is correlated like in production: an app uses a couple of aliases, an alias is
    # served by two instances (primary and fallback), an instance spreads over its keys.
    served_by = {a: [providers[i % 20], providers[(i + 7) % 20]] for i, a in enumerate(aliases)}
    keys_of = {p.pk: [k for k in keys if k.provider_id == p.pk] for p in providers}
    app_aliases = {v.pk: rng.sample(aliases, 2) for v in vkeys}
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    span = (now - start).total_seconds() - 1
    table = UsageRecord._meta.db_table
    cols = [
        "request_id",
        "created_at",
        "endpoint",
        "virtual_key_id",
        "model_alias",
        "provider_id",
        "provider_key_id",
        "account_group",
        "provider_model",
        "stream",
        "status_code",
        "error_type",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "latency_ms",
        "attempts",
        "cost",
    ]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    t0 = time.perf_counter()
    batch = 20_000
    for offset in range(0, n, batch):
        rows = []
        for i in range(offset, min(offset + batch, n)):
            vkey = vkeys[rng.randrange(len(vkeys))]
            alias = rng.choice(app_aliases[vkey.pk])
            provider = served_by[alias][0 if rng.random() < 0.85 else 1]
            key = rng.choice(keys_of[provider.pk])
            status = 200 if rng.random() > 0.03 else 502
            prompt = rng.randint(10, 4000) if status == 200 else 0
            completion = rng.randint(0, 800) if status == 200 else 0
            cost = (
                None
                if rng.random() < 0.05
                else (Decimal(prompt * 3 + completion * 12) / Decimal(1_000_000))
            )
            rows.append(
                (
                    f"bench-{i}",
                    start + timedelta(seconds=rng.random() * span),
                    "chat",
                    vkey.pk,
                    alias,
                    key.provider_id,
                    key.pk,
                    key.account_group,
                    alias + "-v1",
                    False,
                    status,
                    "" if status == 200 else "upstream",
                    prompt,
                    completion,
                    0,
                    rng.uniform(80, 3000),
                    "[]",
                    cost,
                )
            )
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(sql, rows)
    return {"generate_s": round(time.perf_counter() - t0, 1)}


def run(n: int, days: int, *, reuse: bool = False) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from gateway.reports.selectors import GROUPINGS, ReportFilters, cost_report, utc_today
    from gateway.reports.services import rollups_update

    out: dict[str, Any] = {"records": n, "days": days, "database": connection.vendor}
    if reuse:  # the records of an earlier run in the same DATABASE_URL (timings only)
        from gateway.usage.models import UsageRecord

        out["records"] = UsageRecord.objects.count()
    else:
        out.update(generate(n, days))
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    t0 = time.perf_counter()
    rolled = rollups_update(days_back=days + 1)
    out["rollup_s"] = round(time.perf_counter() - t0, 1)
    out["rollup_days"] = len(rolled)
    today = utc_today()
    filters = ReportFilters(start=today - timedelta(days=29), end=today)
    out["selector_ms"] = {}
    for group_by in GROUPINGS:
        ms, report = _timed(lambda g=group_by: cost_report(filters=filters, group_by=g))
        out["selector_ms"][group_by] = round(ms, 1)
    out["total_requests_in_report"] = report.total.requests
    ms_raw, raw = _timed(
        lambda: cost_report(filters=filters, group_by="provider", use_rollups=False), runs=1
    )
    out["selector_raw_no_rollups_ms"] = round(ms_raw, 1)
    assert raw.total.requests == report.total.requests, "rollups and raw disagree"
    user = get_user_model().objects.filter(username="bench-staff").first()
    if user is None:
        user = get_user_model().objects.create_user("bench-staff", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    for name, url in (
        ("page_30d_by_provider_ms", "/ops/costs/?preset=30d&group_by=provider"),
        ("page_30d_by_virtual_key_ms", "/ops/costs/?preset=30d&group_by=virtual_key"),
        ("page_30d_by_day_ms", "/ops/costs/?preset=30d&group_by=day"),
        ("csv_30d_by_key_ms", "/ops/costs.csv?preset=30d&group_by=key"),
        ("json_30d_by_alias_ms", "/api/reports/costs/?preset=30d&group_by=alias"),
    ):
        ms, response = _timed(lambda u=url: client.get(u))
        assert response.status_code == 200, (url, response.status_code)
        out[name] = round(ms, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Time the reports over the records an earlier run left in DATABASE_URL.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reports-bench-") as tmp:
        _setup(Path(tmp))
        result = run(args.records, args.days, reuse=args.reuse)
    result["machine"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(f"{'measure':<32} value")
    for k, v in result.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                print(f"  {k}.{k2:<24} {v2}")
        else:
            print(f"  {k:<30} {v}")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"reports_{result['database']}_{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
