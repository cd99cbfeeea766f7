"""Redaction of upstream error text: keys and credential headers, whole, in any case, or in
pieces, before any truncation; for the client, the health-check log and stored messages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.routing.table import RouteTable
from providers.health import health_check_run
from providers.models import HealthCheck
from providers.redaction import MASK, redact
from tests.factories import Instance, make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

KEY = "sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUv"
SUBSCRIPTION = "5f0e8d7c6b5a49382716aabbccddeeff"


def leaks(text: str) -> list[str]:
    """Every 8-character piece of a secret still in ``text`` (any case)."""
    lowered = text.lower()
    return [
        s[i : i + 8]
        for s in (KEY.lower(), SUBSCRIPTION)
        for i in range(len(s) - 7)
        if s[i : i + 8] in lowered
    ]


ECHOES = [
    f"Incorrect API key provided: {KEY}.",
    f"Incorrect API key provided: {KEY[:12]}…{KEY[-4:]}",  # the shape OpenAI answers with
    f"invalid key {KEY.upper()}",
    f"key '{KEY[5:17]}' rejected",
    f"subscription key {SUBSCRIPTION.upper()} is over its quota",
    f"Access denied due to invalid subscription key {SUBSCRIPTION[:10]}.",
]


@pytest.mark.parametrize("text", ECHOES)
def test_redact_finds_every_form(text: str) -> None:
    out = redact(text, [KEY, SUBSCRIPTION])
    assert MASK in out and leaks(out) == []


def test_redact_keeps_ordinary_text_and_cuts_after_redaction() -> None:
    assert redact("model gpt-4o does not exist", [KEY]) == "model gpt-4o does not exist"
    text = "x" * 195 + KEY
    out = redact(text, [KEY], limit=200)
    # Were the text cut before redaction, the key's first 5 characters ("sk-pr") would be left,
    # too short for any matcher to recognise; redacting first leaves only the mask's start.
    assert out == "x" * 195 + MASK[:5] and leaks(out) == []


def test_short_secrets_are_matched_whole_only() -> None:
    assert redact("token abcd1 here", ["ABCD1"]) == f"token {MASK} here"
    assert redact("abc", ["abc"]) == "abc"  # too short to be a secret worth matching


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, Any]:
    inst = make_provider(
        "echoing",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[{"name": "only", "api_key": KEY}],
        custom_headers={"Ocp-Apim-Subscription-Key": SUBSCRIPTION, "X-Team": "blue"},
    )
    make_mapping("gpt-4o", inst)
    return {"inst": inst, "key": make_vkey("app").plaintext, "table": install_table()}


BODY = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})


def chat(gateway: InProcessGateway, key: str) -> Any:
    async def call(client: Any) -> Any:
        return await client.post(
            "/v1/chat/completions",
            content=orjson.dumps(
                {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
            ),
            headers={"authorization": f"Bearer {key}"},
        )

    return gateway.run(call)


@pytest.mark.parametrize("echo", ECHOES)
def test_the_client_never_sees_an_echoed_secret(
    world: dict[str, Any], fake_upstream: FakeUpstream, gateway: InProcessGateway, echo: str
) -> None:
    fake_upstream.behave(Behaviour.fail(400, echo))
    response = chat(gateway, world["key"])
    assert response.status_code == 400
    assert MASK in response.text and leaks(response.text) == []


def test_a_long_plain_text_body_is_redacted_before_it_is_cut(
    world: dict[str, Any], fake_upstream: FakeUpstream, gateway: InProcessGateway
) -> None:
    body = ("<html>" + "padding " * 30 + f"key={KEY[:20]}</html>").encode()
    fake_upstream.behave(Behaviour.fail(400, body=body))
    response = chat(gateway, world["key"])
    assert response.status_code == 400
    assert leaks(response.text) == [] and MASK in response.text


def test_health_checks_store_and_log_no_secret(
    fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    inst: Instance = make_provider(
        "probe-echo",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[{"name": "only", "api_key": KEY}],
        custom_headers={"Ocp-Apim-Subscription-Key": SUBSCRIPTION},
    )
    message = " / ".join(ECHOES) + " " + "z" * 600
    fake_upstream.behave(Behaviour.fail(401, message))
    with caplog.at_level(logging.INFO):
        health_check_run(provider_id=inst.id)
    check = HealthCheck.objects.get(provider=inst.provider)
    assert check.error_category == "auth" and MASK in check.error_message
    assert leaks(check.error_message) == []
    assert leaks(caplog.text) == []


def test_an_echo_in_the_error_type_or_code_is_redacted_too(
    world: dict[str, Any], fake_upstream: FakeUpstream, gateway: InProcessGateway
) -> None:
    body = {"error": {"message": "no", "type": f"bad_{KEY.upper()}", "code": SUBSCRIPTION}}
    fake_upstream.behave(Behaviour.fail(400, body=body))
    response = chat(gateway, world["key"])
    assert response.status_code == 400
    assert leaks(response.text) == [] and MASK in response.text
