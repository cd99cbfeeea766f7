"""Synthetic usage records on PostgreSQL, written by the server (``generate_series``).

Shared by the request-log and usage-scale benchmarks: rows spread evenly over the last ``days``
days, cheap to make by the million, with the cardinalities given (instances, virtual keys,
aliases, account groups), 3% 5xx, 5% 429 and 10% streamed.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def bench_django_setup() -> None:
    """Django against ``DATABASE_URL``, which must be a throwaway PostgreSQL database."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a throwaway PostgreSQL database")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    os.environ.setdefault("DEBUG", "1")  # generated development secrets: a scratch run
    os.environ.setdefault("REDIS_URL", "")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    """Median wall time of ``fn`` in ms over ``runs``, after one warm-up call (pages are read
    from a warm server)."""
    fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def bench_rows_setup(*, instances: int = 20, vkeys: int = 200) -> dict[str, list[int]]:
    """The instances and virtual keys the rows refer to (created once, reused)."""
    from gateway.keys.models import VirtualKey
    from gateway.keys.services import virtual_key_create
    from providers.models import Provider

    providers = [
        Provider.objects.get_or_create(name=f"bench-{i}", defaults={"provider_type": "mock"})[0].pk
        for i in range(instances)
    ]
    keys = [
        (VirtualKey.objects.filter(name=f"bench-app-{i}").first()
         or virtual_key_create(name=f"bench-app-{i}")[0]).pk
        for i in range(vkeys)
    ]  # fmt: skip
    return {"providers": providers, "vkeys": keys}


def bench_rows_insert(
    refs: dict[str, list[int]],
    *,
    first: int,
    count: int,
    total: int,
    days: int = 90,
    aliases: int = 12,
    groups: int = 4,
) -> None:
    """Insert rows ``first .. first + count - 1`` of ``total`` (row g is g/total of ``days``
    before now, so chunks of one series fill the period evenly)."""
    from django.db import connection

    params: dict[str, Any] = {
        "first": first,
        "last": first + count - 1,
        "total": total,
        "days": days,
        "aliases": aliases,
        "groups": groups,
        "vkeys": refs["vkeys"],
        "nv": len(refs["vkeys"]),
        "providers": refs["providers"],
        "np": len(refs["providers"]),
    }
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO gateway_usagerecord (request_id, created_at, endpoint, virtual_key_id,
                model_alias, provider_id, account_group, provider_model, stream, status_code,
                error_type, prompt_tokens, completion_tokens, cached_tokens, latency_ms, ttft_ms,
                attempts, cost)
            SELECT 'bench-' || g,
                   now() - (g::float / %(total)s) * %(days)s * interval '1 day',
                   'chat',
                   (%(vkeys)s::int[])[(1 + (g * 7919) %% %(nv)s)::int],
                   'alias-' || (g * 31) %% %(aliases)s,
                   (%(providers)s::int[])[(1 + (g * 17) %% %(np)s)::int],
                   (g * 13) %% %(groups)s,
                   'model-' || (g * 31) %% %(aliases)s,
                   g %% 10 = 0,
                   CASE WHEN g %% 33 = 0 THEN 502 WHEN g %% 20 = 0 THEN 429 ELSE 200 END,
                   '',
                   (g * 37) %% 4000, (g * 11) %% 800, 0,
                   50 + (g * 7) %% 2000, NULL,
                   '[{"provider_id": 1, "provider_name": "bench-1", "key_name": "k",
                      "status": 200, "error": "", "duration_ms": 120.0}]'::jsonb,
                   ((g %% 1000) / 100000.0)::numeric
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
            """,
            params,
        )
