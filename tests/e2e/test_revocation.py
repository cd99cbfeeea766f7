"""Revocation across processes: ``serve --workers 2`` on PostgreSQL + Redis.

A key disabled while the gateway is idle is refused by every request starting
``GATEWAY_CONFIG_MAX_STALENESS`` (plus a small margin) later, on both workers, with no request
in between to trigger a refresh; an alias added the same way is routed by the next request.
Which worker answered is read from prometheus-client's per-process files (one per pid, written
when the worker's usage queue flushes); each phase then talks to both workers over two
kept-alive connections, one pinned to each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from gateway.keys.models import VirtualKey, hash_key
from tests.e2e.conftest import start_gateway
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STALENESS = 0.5
MARGIN = 0.3
N = 10


@pytest.fixture
def two_workers(
    require_postgres: None, with_redis: str, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    multiproc = tmp_path / "prom"
    server = start_gateway(
        tmp_path / "serve.log",
        workers=2,
        REDIS_URL=with_redis,
        GATEWAY_STATE_DIR=str(tmp_path / "state"),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        GATEWAY_CONFIG_MAX_STALENESS=str(STALENESS),
        GATEWAY_USAGE_QUEUE="gateway.usage.queues.DatabaseUsageQueue",
    )
    try:
        yield server.url, multiproc
    finally:
        server.stop()


def served_by(multiproc: Path, alias: str) -> dict[str, float]:
    """Requests for ``alias`` counted per worker pid (each worker writes its own file)."""
    counts: dict[str, float] = {}
    for path in multiproc.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            name, _metric, labels, *_rest = json.loads(key)
            if name == "gateway_requests" and labels.get("alias") == alias:
                counts[pid] = counts.get(pid, 0) + value
    return counts


def served_by_settled(
    multiproc: Path, alias: str, until: Callable[[dict[str, float]], bool]
) -> dict[str, float]:
    """``served_by`` once ``until`` holds for it (or after 5 s): a worker hands its counts to
    its file when its usage queue flushes the requests' events, a linger after the response."""
    deadline = time.monotonic() + 5
    counts = served_by(multiproc, alias)
    while not until(counts) and time.monotonic() < deadline:
        time.sleep(0.01)
        counts = served_by(multiproc, alias)
    return counts


def chat(client: httpx.Client, key: str, model: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )


@pytest.fixture
def pinned() -> Iterator[list[httpx.Client]]:
    """Clients opened by the test, closed after it."""
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def pin_both_workers(
    clients: list[httpx.Client], url: str, key: str, model: str, multiproc: Path
) -> dict[str, httpx.Client]:
    """Two clients, by worker pid, whose one kept-alive connection went to different workers.

    The kernel picks the worker per new connection, so clients are opened until two
    distinct pids have answered; requests on a client then stay on its worker.
    """
    by_pid: dict[str, httpx.Client] = {}
    for _ in range(60):
        client = httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_connections=1))
        clients.append(client)
        before = served_by(multiproc, model)
        response = chat(client, key, model)
        assert response.status_code == 200, response.text
        after = served_by_settled(multiproc, model, before.__ne__)
        (pid,) = [p for p in after if after[p] != before.get(p, 0)]
        by_pid.setdefault(pid, client)
        if len(by_pid) == 2:
            break
    assert len(by_pid) == 2, "new connections never reached both workers"
    return by_pid


def test_disable_and_add_apply_on_every_worker_within_the_window(
    two_workers: tuple[str, Path], pinned: list[httpx.Client], fake_upstream: FakeUpstream
) -> None:
    url, multiproc = two_workers
    inst = make_provider("rv-inst", "openai", upstream_url=fake_upstream.url)
    make_mapping("rv-chat", inst, "fake-gpt")
    key = make_vkey("rv-app").plaintext
    time.sleep(STALENESS + MARGIN)  # the workers pick up the new configuration
    workers = pin_both_workers(pinned, url, key, "rv-chat", multiproc)  # warms both with the key

    row = VirtualKey.objects.get(key_hash=hash_key(key))
    row.is_enabled = False
    row.save()
    time.sleep(STALENESS + MARGIN)  # no traffic
    answers = [chat(client, key, "rv-chat") for client in workers.values() for _ in range(N)]
    assert [a.status_code for a in answers] == [401] * 2 * N, [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers} == {"api_key_disabled"}

    other = make_vkey("rv-other").plaintext
    make_mapping("rv-late", inst, "fake-gpt")
    time.sleep(STALENESS + MARGIN)  # no traffic
    late = [chat(client, other, "rv-late") for client in workers.values() for _ in range(N)]
    assert [a.status_code for a in late] == [200] * 2 * N, [a.text for a in late]
    # Both workers routed the new alias (and the connections stayed on their workers).
    served = served_by_settled(multiproc, "rv-late", lambda c: sum(c.values()) >= 2 * N)
    assert served == dict.fromkeys(workers, float(N))
