"""Upstream API keys never leave the gateway: not in responses (headers, bodies, errors, streams)
nor in the server's log, which runs at DEBUG level for this very check."""

from __future__ import annotations

import httpx
import pytest

from gateway.keys.models import RoutingSettings
from tests.e2e.conftest import World
from tests.fakes.upstream import Behaviour

pytestmark = pytest.mark.e2e


def test_upstream_keys_never_in_responses_or_logs(e2e: World) -> None:
    assert e2e.server.env["LOG_LEVEL"] == "DEBUG"
    main = e2e.provider(
        "secretive",
        keys=[
            {"name": "k1", "primary": True, "account_group": 1},
            {"name": "k2", "account_group": 2},
        ],
        max_retries=1,
    )
    azure = e2e.provider("secretive-azure", "azure_openai")
    claude = e2e.provider("secretive-claude", "anthropic")
    e2e.mapping("m", main)
    e2e.mapping("az", azure)
    e2e.mapping("claude", claude)
    e2e.mapping("emb", main, "fake-embed", supports_chat=False, supports_embeddings=True)
    vkey = e2e.vkey()
    # Many failures in a row on one instance: keep its circuit closed, this test is about
    # what each failure's answer contains.
    RoutingSettings.objects.update_or_create(pk=1, defaults={"failure_threshold": 1000})
    e2e.publish()
    secrets = [*main.api_keys.values(), azure.api_key, claude.api_key]
    auth = {"authorization": f"Bearer {vkey}"}
    client = e2e.http()
    responses: list[httpx.Response] = []

    def chat(model: str, **extra: object) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
        responses.append(client.post("/v1/chat/completions", json=body, headers=auth))

    for model in ("m", "az", "claude"):
        chat(model)
        chat(model, stream=True, stream_options={"include_usage": True})
    responses.append(
        client.post("/v1/embeddings", json={"model": "emb", "input": "x"}, headers=auth)
    )
    responses.append(client.get("/v1/models", headers=auth))
    # Upstreams that echo the key they were given (as some do in auth errors), on every path
    # that turns an upstream answer into a client error.
    for secret in secrets:
        echo = f"Incorrect API key provided: {secret}. You can find your API key at ..."
        e2e.fake.behave(Behaviour.fail(401, echo), key=secret)
    chat("m")  # both keys refused: the last upstream message becomes the client's error
    chat("az")
    chat("claude")
    for status in (400, 429, 500):
        e2e.fake.behave(Behaviour.fail(status, f"bad request from {main.api_key}"))
        e2e.fake.behave(key=main.api_keys["k1"])
        e2e.fake.behave(key=main.api_keys["k2"])
        chat("m")
    e2e.fake.behave(Behaviour(mode="stream_error", after_chunks=0))
    chat("m", stream=True)
    e2e.fake.behave(Behaviour(mode="reset"))
    chat("m")
    e2e.fake.behave(Behaviour(mode="garbage"))
    chat("m")

    assert len(responses) >= 16
    assert {r.status_code for r in responses} >= {200, 400, 401, 429, 500, 502}
    for response in responses:
        blob = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in secrets:
            assert secret not in blob, f"upstream key leaked in {response.status_code}: {blob}"
    e2e.fake.wait_for(lambda log: all(r.done.is_set() for r in log))

    log = e2e.server.log_text()
    assert "route table rebuilt" in log  # the file does capture the gateway's logging
    for secret in [*secrets, vkey]:
        assert secret not in log
