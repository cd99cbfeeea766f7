"""Per-event cost of the Prometheus request series (``usage_event_observe``), in process.

    DEBUG=1 .venv/bin/python bench/metrics_observe.py

One streamed, priced-less event with one attempt and an error-free status; no route table is
installed, so labels take their fallback values (the same work per label as with a table).
Prints microseconds per event for three rounds of 200,000 events.
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

from gateway.monitoring.metrics import usage_event_observe  # noqa: E402
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

if __name__ == "__main__":
    for _ in range(3):
        seconds = timeit.timeit(lambda: usage_event_observe(EVENT), number=N)
        print(f"{seconds / N * 1e6:.2f} us/event")
