"""Metric labels come only from the route table: a client's ``model`` string never becomes a
series (unknown -> ``_unknown``), every label is length-capped, and the usage event records an
unknown model as ``_unknown``, not as the client's string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.test import Client

from gateway.monitoring.metrics import LABEL_MAX
from gateway.routing.table import RouteTable
from gateway.usage.events import UNKNOWN_MODEL, set_usage_queue
from tests.factories import make_mapping, make_provider, make_vkey
from tests.monitoring.test_views import RecordingQueue, _sample
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

LONG_ALIAS = "a" * 150


def test_unknown_models_never_become_labels(
    install_table: Callable[[], RouteTable], gateway: InProcessGateway
) -> None:
    inst = make_provider("label-inst", "mock")
    make_mapping(LONG_ALIAS, inst)
    restricted = make_vkey("tenant", models=[LONG_ALIAS]).plaintext
    install_table()
    queue = RecordingQueue()
    set_usage_queue(queue)
    huge = "=HYPERLINK(" + "x" * 100_000
    headers = {"authorization": f"Bearer {restricted}"}

    async def traffic(client: Any) -> list[Any]:
        out = []
        for path, body in (
            (
                "/v1/chat/completions",
                {"model": huge, "messages": [{"role": "user", "content": "x"}]},
            ),
            ("/v1/embeddings", {"model": huge + "e", "input": "x"}),
            ("/v1/messages", {"model": huge + "m", "max_tokens": 5, "messages": []}),
            (
                "/v1/chat/completions",
                {"model": LONG_ALIAS, "messages": [{"role": "user", "content": "x"}]},
            ),
        ):
            out.append(await client.post(path, json=body, headers=headers))
        await queue.aclose()
        return out

    responses = gateway.run(traffic)
    assert [r.status_code for r in responses][-1] == 200
    assert all(r.status_code in (400, 404) for r in responses[:-1]), [r.text for r in responses]

    text = Client().get("/metrics").content.decode()
    assert "HYPERLINK" not in text and "xxxxxxxxxx" not in text
    assert len(text) < 200_000
    assert _sample(text, "gateway_requests_total", alias=UNKNOWN_MODEL, status="404") >= 1
    capped = LONG_ALIAS[:LABEL_MAX]
    assert _sample(text, "gateway_requests_total", alias=capped, provider="label-inst") >= 1
    for line in text.splitlines():
        if not line.startswith("#"):
            labels = line.split("}")[0]
            assert all(len(v) <= LABEL_MAX for v in labels.split('"')[1::2]), line[:200]

    events = [orjson.loads(p) for p in queue.delivered]
    aliases = [e["model_alias"] for e in events]
    assert aliases.count(LONG_ALIAS) == 1
    assert all(a in (UNKNOWN_MODEL, LONG_ALIAS) for a in aliases), [a[:30] for a in aliases]
    assert UNKNOWN_MODEL in aliases
