"""Per-event cost of the Prometheus request series (``usage_event_observe``), in process.

    DEBUG=1 .venv/bin/python bench/metrics_observe.py

One streamed, priced-less event with one attempt and an error-free status; no route table is
installed, so labels take their fallback values (the same work per label as with a table).
Prints microseconds per event for three rounds of 200,000 events tallied, then three with
the tally published every 8 events, as the usage queue's flushes do. Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory for the cost in ``serve --workers N``.
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

import django

django.setup()

from gateway.monitoring.metrics import metrics_publish, usage_event_observe  # noqa: E402
from gateway.usage.events import Attempt, UsageEvent  # noqa: E402

EVENT = UsageEvent(
    request_id="bench",
    created_at=0.0,
    endpoint="chat",
    virtual_key_id=1,
    model_alias="alias",
    status_code=200,
    stream=True,
    provider_id=1,
    provider_name="instance",
    key_id=3,
    key_name="key",
    account_group=2,
    mapping_id=1,
    prompt_tokens=10,
    completion_tokens=5,
    latency_ms=12.0,
    ttft_ms=5.0,
    attempts=[Attempt(1, "instance", 3, "key", 200, "", 10.0)],
)
N = 200_000
BATCH = 8  # events per usage flush, about what a worker flushes per linger at c=16


def _batch() -> None:
    for _ in range(BATCH):
        usage_event_observe(EVENT)
    metrics_publish()


if __name__ == "__main__":
    for _ in range(3):
        seconds = timeit.timeit(lambda: usage_event_observe(EVENT), number=N)
        print(f"{seconds / N * 1e6:.2f} us/event tallied")
    for _ in range(3):
        seconds = timeit.timeit(_batch, number=N // BATCH)
        print(f"{seconds / N * 1e6:.2f} us/event tallied and published by {BATCH}")
