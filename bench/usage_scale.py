"""Usage table at scale: 20M records over 90 days in monthly partitions on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/SCRATCH python bench/usage_scale.py \
        [--records 20000000] [--days 90] [--chunk 1000000] [--sample 50000] [--reuse]

Give it a throwaway PostgreSQL database: it migrates it (the usage table partitioned by month),
replaces its usage records with ``--records`` synthetic ones (20 instances, 5 account groups,
50 aliases, 200 virtual keys) spread over the last ``--days`` days, and reports:

- the bulk load rate (server-side ``INSERT ... SELECT generate_series`` in ``--chunk`` rows),
  and the recorder's own rate: ``--sample`` usage events through ``usage_events_record`` (the
  Celery drain's path: dedupe, prices, COPY + ``INSERT ... ON CONFLICT DO NOTHING``) in
  batches of 500, into the full table;
- the size on disk (every partition, indexes included);
- the daily rollups of the whole period (what the Celery task does, once);
- the 30-day cost report (the page's selector, by instance and by virtual key) and the
  request log's first page and a page 100,000 rows deep (keyset), each the median of 5;
- the time to drop the oldest month through the retention service (rollup check included).

Mind the disk: 20M rows take about 9 GB here (the run prints it). Drop the database after.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django() -> None:
    from bench.usage_rows import bench_django_setup

    bench_django_setup()


def _size_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT COALESCE(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree('gateway_usagerecord')"
        )
        return int(cur.fetchone()[0])


def _load(args: argparse.Namespace) -> dict[str, float]:
    from django.core.management import call_command
    from django.db import connection, transaction

    from bench.usage_rows import bench_rows_insert, bench_rows_setup
    from gateway.usage.models import UsageRecord
    from gateway.usage.partitions import partition_create, partitions_list

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE gateway_usagerecord")
    # The months of the period exist before the load, as the maintenance task keeps them.
    have = {p.start for p in partitions_list()}
    day = datetime.now(tz=UTC).date() - timedelta(days=args.days + 1)
    while day <= datetime.now(tz=UTC).date():
        start = datetime(day.year, day.month, 1, tzinfo=UTC)
        if start not in have:
            partition_create(start=start)
            have.add(start)
        day += timedelta(days=28)
    refs = bench_rows_setup(instances=20, vkeys=200)
    t0 = time.perf_counter()
    for first in range(1, args.records + 1, args.chunk):
        count = min(args.chunk, args.records - first + 1)
        with transaction.atomic():
            bench_rows_insert(
                refs, first=first, count=count, total=args.records, days=args.days,
                aliases=50, groups=5,
            )  # fmt: skip
        done = first + count - 1
        rate = done / (time.perf_counter() - t0)
        print(f"  loaded {done:,} rows ({rate:,.0f} rows/s)", flush=True)
    bulk_s = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute("ANALYZE gateway_usagerecord")
    assert UsageRecord.objects.count() >= args.records
    return {"bulk_rows_per_s": args.records / bulk_s, "bulk_s": bulk_s}


def _recorder_rate(sample: int) -> float:
    from gateway.usage.recorder import usage_events_record

    now = time.time()
    events = [
        {
            "request_id": f"gw-{uuid.uuid4().hex}",
            "created_at": now - i * 0.01,
            "endpoint": "chat",
            "model_alias": f"alias-{i % 50}",
            "status_code": 200,
            "prompt_tokens": 100 + i % 900,
            "completion_tokens": 50 + i % 300,
        }
        for i in range(sample)
    ]
    t0 = time.perf_counter()
    for i in range(0, sample, 500):
        usage_events_record(events=events[i : i + 500])
    return sample / (time.perf_counter() - t0)


def main() -> None:
    from bench.usage_rows import median_ms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep the records already there")
    args = parser.parse_args()
    _django()
    from gateway.reports.request_log import log_page
    from gateway.reports.retention import usage_retention_apply
    from gateway.reports.selectors import ReportFilters, cost_report, utc_today
    from gateway.reports.services import rollups_update
    from gateway.usage.models import UsageRecord
    from gateway.usage.partitions import partitions_list

    out: dict[str, Any] = {}
    if not args.reuse:
        out.update(_load(args))
    out["recorder_events_per_s"] = _recorder_rate(args.sample)
    total = UsageRecord.objects.count()
    out["records"] = total
    out["partitions"] = len(partitions_list())
    out["size_gb"] = _size_bytes() / 1e9
    t0 = time.perf_counter()
    rollups_update(days_back=args.days + 1)
    out["rollups_s"] = time.perf_counter() - t0
    today = utc_today()
    filters = ReportFilters(start=today - timedelta(days=29), end=today)
    for group in ("provider", "virtual_key"):
        out[f"cost_report_30d_{group}_ms"] = median_ms(
            lambda g=group: cost_report(filters=filters, group_by=g)
        )
    out["request_log_first_page_ms"] = median_ms(lambda: log_page({}))
    deep = UsageRecord.objects.order_by("-created_at", "-id").values_list("id", flat=True)[100_000]
    out["request_log_100k_deep_ms"] = median_ms(lambda: log_page({"before": deep}))
    oldest = partitions_list()[0]
    keep_days = (today - oldest.end.date()).days  # the oldest month is just past the cutoff
    t0 = time.perf_counter()
    result = usage_retention_apply(days=keep_days, today=today)
    out["drop_month_s"] = time.perf_counter() - t0
    out["dropped"] = ", ".join(result.dropped_partitions)
    out["days_rolled_up_before_drop"] = len(result.rolled_up)
    print(f"\n{'measure':<34} value")
    for key, value in out.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else value
        )
        print(f"{key:<34} {shown}")


if __name__ == "__main__":
    main()
