"""A gateway SIGKILLed while its answered requests' usage events linger in memory: the next
start adopts its write-ahead journal and records each of them once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from gateway.usage.models import UsageRecord
from tests.e2e.conftest import World, start_gateway
from tests.fakes.upstream import FakeUpstream
from tests.usage.test_journal import journaled

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def test_answers_of_a_killed_process_are_recorded_once_after_it(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    world = World(server=None, fake=fake_upstream)  # type: ignore[arg-type]
    world.mapping("m", world.provider("journal"))
    key = world.vkey()
    state = tmp_path / "state"
    env = {
        "GATEWAY_USAGE_QUEUE": "gateway.usage.queues.DatabaseUsageQueue",
        "GATEWAY_STATE_DIR": str(state),
    }
    # The events wait a minute in memory: only the journal can keep them.
    first = start_gateway(
        tmp_path / "first.log",
        GATEWAY_USAGE_LINGER_SECONDS="60",
        GATEWAY_USAGE_FLUSH_SECONDS="60",
        **env,
    )
    try:
        world.publish(first)
        answered = []
        for _ in range(5):
            response = httpx.post(
                first.base_url + "/chat/completions",
                json=CHAT,
                headers={"authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            answered.append(response.headers["x-request-id"])
        assert not UsageRecord.objects.filter(request_id__in=answered).exists()
        first.process.kill()
        first.process.wait(10)
    finally:
        first.stop()
    assert sorted(journaled(state / "usage-spool")) == sorted(answered)

    second = start_gateway(tmp_path / "second.log", **env)
    try:
        deadline = time.monotonic() + 30
        while UsageRecord.objects.filter(request_id__in=answered).count() < len(answered):
            assert time.monotonic() < deadline, second.log_text()[-3000:]
            time.sleep(0.1)
    finally:
        second.stop()
        world.close()
    ids = list(UsageRecord.objects.filter(request_id__in=answered).values_list("request_id"))
    assert sorted(rid for (rid,) in ids) == sorted(answered)  # each exactly once
    assert journaled(state / "usage-spool") == []  # adopted, and the second one's removed
