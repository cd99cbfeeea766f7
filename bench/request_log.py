"""Request log benchmark: keyset pages over millions of usage records on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/SCRATCH python bench/request_log.py \
        [--records 3000000] [--runs 7] [--reuse]

Give it a throwaway PostgreSQL database: it migrates it and replaces its usage records with
``--records`` synthetic ones (20 instances, 200 virtual keys, 12 aliases, 3% 5xx, 5% 4xx,
10% streamed) spread over 90 days, written by one ``INSERT ... SELECT generate_series`` so a
few million rows take about a minute. Then it times, median of ``--runs``: the first page, a
page 100,000 rows deep (keyset cursor), the same depth with OFFSET (what keyset avoids), and
first pages under each filter, through the same selector the page uses
(:func:`gateway.reports.request_log.log_page`); and prints the first page's query plan.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django() -> None:
    from bench.usage_rows import bench_django_setup

    bench_django_setup()


def _generate(n: int) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from bench.usage_rows import bench_rows_insert, bench_rows_setup
    from gateway.usage.models import UsageRecord

    call_command("migrate", verbosity=0)
    UsageRecord.objects.all().delete()
    refs = bench_rows_setup()
    t0 = time.perf_counter()
    bench_rows_insert(refs, first=1, count=n, total=n)
    with connection.cursor() as cur:
        cur.execute("ANALYZE gateway_usagerecord")
    return {
        "seconds": time.perf_counter() - t0,
        "provider": refs["providers"][3],
        "vkey": refs["vkeys"][42],
    }


def main() -> None:
    from bench.usage_rows import median_ms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep the records already there")
    args = parser.parse_args()
    _django()
    from django.db import connection

    from gateway.reports.request_log import PAGE_SIZE, log_page, log_tail
    from gateway.usage.models import UsageRecord
    from providers.models import Provider

    if args.reuse and UsageRecord.objects.exists():
        made = {
            "seconds": 0.0,
            "provider": Provider.objects.get(name="bench-3").pk,
            "vkey": UsageRecord.objects.values_list("virtual_key_id", flat=True).first(),
        }
    else:
        made = _generate(args.records)
    total = UsageRecord.objects.count()
    print(f"{total:,} usage records (generated in {made['seconds']:.0f} s)")
    deep = 100_000
    newest = UsageRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0
    cursor = UsageRecord.objects.order_by("-created_at", "-id").values_list("id", flat=True)[deep]
    cases: dict[str, Any] = {
        "first page": lambda: log_page({}),
        f"page {deep:,} rows deep (keyset)": lambda: log_page({"before": cursor}),
        f"page {deep:,} rows deep (OFFSET, for comparison)": lambda: list(
            UsageRecord.objects.order_by("-created_at", "-id").values("id", "model_alias")[
                deep : deep + PAGE_SIZE
            ]
        ),
        "filter: alias": lambda: log_page({"alias": "alias-5"}),
        "filter: instance": lambda: log_page({"instance": made["provider"]}),
        "filter: virtual key": lambda: log_page({"key": made["vkey"]}),
        "filter: status 5xx": lambda: log_page({"status": "5xx"}),
        "filter: streamed + 5xx": lambda: log_page({"streamed": "yes", "status": "5xx"}),
        "tail (newer than a recent id)": lambda: log_tail({"after": newest - 20}),
    }
    print(f"{'query':<48} {'median ms':>10}")
    for name, fn in cases.items():
        print(f"{name:<48} {median_ms(fn, args.runs):>10.2f}")
    from django.db.models import Q

    from gateway.reports.request_log import filtered

    at = UsageRecord.objects.filter(pk=cursor).values_list("created_at", flat=True).get()
    deep_qs = (
        filtered({})
        .filter(created_at__lte=at)
        .filter(Q(created_at__lt=at) | Q(id__lt=cursor))
        .order_by("-created_at", "-id")
        .values("id")[: PAGE_SIZE + 1]
    )
    with connection.cursor() as cur:
        sql, params = deep_qs.query.sql_with_params()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print(f"\nplan of the page {deep:,} rows deep:\n" + "\n".join(r[0] for r in cur.fetchall()))


if __name__ == "__main__":
    main()
