"""Shared steps of the topology tests: a configuration, gateway processes on a topology,
requests that remember what was answered, and draining the usage stream into the database."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from gateway.usage.models import UsageRecord
from gateway.usage.recorder import usage_stream_drain
from tests.e2e.conftest import GatewayServer

RECORD_TIMEOUT = 30.0
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def gateway_env(topology: dict[str, str], state_dir: Path) -> dict[str, str]:
    """A gateway on ``topology`` whose usage goes to the Redis stream (spooled while down)."""
    return {
        **topology,
        "GATEWAY_USAGE_QUEUE": "",  # the default with Redis: the stream
        "GATEWAY_STATE_DIR": str(state_dir),
        "GATEWAY_USAGE_RETRY_SECONDS": "0.3",
        "GATEWAY_RATE_LIMIT_WINDOW": "3600",  # no window rollover during a test
        "GATEWAY_CONFIG_CHECK_INTERVAL": "0.3",
    }


@dataclass
class Answers:
    """Request ids of the requests answered 2xx, and every status seen."""

    ok: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def send(self, server: GatewayServer, key: str) -> httpx.Response:
        response = httpx.post(
            server.base_url + "/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {key}"},
            timeout=20,
        )
        self.statuses.append(response.status_code)
        if response.status_code < 300:
            self.ok.append(response.headers["x-request-id"])
        return response


def drain_until_recorded(request_ids: list[str]) -> dict[str, int]:
    """Drain the usage stream (this process, the test's settings) until every id has its
    record or the bounded wait ends; the count of records per answered id."""

    def drain() -> None:
        # Right after a failover a drain may fail: the periodic drain task would run again.
        with contextlib.suppress(redis.RedisError):
            usage_stream_drain(max_seconds=2, claim_idle_seconds=1)

    return until_recorded(request_ids, before_each=drain)


def until_recorded(
    request_ids: list[str],
    *,
    before_each: Callable[[], None] | None = None,
    timeout: float = RECORD_TIMEOUT,
) -> dict[str, int]:
    """Records per id, once every id has one or the bounded wait ends; ``before_each`` runs
    before every look (a drain in this process, when no worker does it)."""
    deadline = time.monotonic() + timeout
    while True:
        if before_each is not None:
            before_each()
        rows = UsageRecord.objects.filter(request_id__in=request_ids)
        found: dict[str, int] = {}
        for rid in rows.values_list("request_id", flat=True):
            found[rid] = found.get(rid, 0) + 1
        if len(found) == len(set(request_ids)) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
