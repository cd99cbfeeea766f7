"""Key failover within an instance (ConduitLLM rules), instance failover, upstream errors."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.e2e.conftest import World
from tests.fakes.upstream import Behaviour

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "m", "messages": MESSAGES}


def chat_raw(e2e: World, key: str, body: dict | None = None) -> httpx.Response:
    return e2e.http().post(
        "/v1/chat/completions", json=body or CHAT, headers={"authorization": f"Bearer {key}"}
    )


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_moves_to_the_next_key(e2e: World, status: int) -> None:
    inst = e2e.provider(
        "keys",
        keys=[
            {"name": "main", "primary": True, "account_group": 1},
            {"name": "backup", "account_group": 1},
        ],
    )
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(status, "revoked"), key=inst.api_keys["main"])
    raw = e2e.openai(key).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert "x-gateway-key-name" not in raw.headers  # provider keys are not named to clients
    assert raw.parse().choices[0].message.content == "Echo: hi"
    assert [r.api_key for r in e2e.fake.requests()] == [
        inst.api_keys["main"],
        inst.api_keys["backup"],
    ]


def test_rate_limit_moves_to_another_account_group(e2e: World) -> None:
    inst = e2e.provider(
        "groups",
        keys=[
            {"name": "g1-a", "primary": True, "account_group": 1},
            {"name": "g1-b", "account_group": 1},  # same account: shares the exhausted limit
            {"name": "g2-a", "account_group": 2},
        ],
    )
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(429, "slow down", retry_after=1), key=inst.api_keys["g1-a"])
    raw = e2e.openai(key).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert "x-gateway-key-name" not in raw.headers  # provider keys are not named to clients
    assert [r.api_key for r in e2e.fake.requests()] == [
        inst.api_keys["g1-a"],
        inst.api_keys["g2-a"],
    ]
    assert e2e.fake.requests(key=inst.api_keys["g1-b"]) == []


def test_rate_limit_on_every_group_is_reported_as_429(e2e: World) -> None:
    inst = e2e.provider(
        "all-limited",
        keys=[
            {"name": "a", "primary": True, "account_group": 1},
            {"name": "b", "account_group": 1},
            {"name": "c", "account_group": 2},
        ],
        # No retries: with retries the instance would wait out Retry-After and try again
        # (tests/routing/test_routing.py::test_retry_after_is_honoured_then_capped covers that).
        max_retries=0,
    )
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(429, "quota", retry_after=7))
    with pytest.raises(openai.RateLimitError) as info:
        e2e.openai(key).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.body["provider_id"] == inst.id  # type: ignore[index]
    # The upstream's Retry-After reaches the client.
    assert info.value.response.headers["retry-after"] == "7"
    # One try per account group: a rate-limited group is not tried again with another key.
    assert [r.api_key for r in e2e.fake.requests()] == [inst.api_keys["a"], inst.api_keys["c"]]


def test_key_base_url_and_organization_override(e2e: World) -> None:
    inst = e2e.provider(
        "overrides",
        keys=[
            {"name": "main", "primary": True, "organization": "org-main"},
            {
                "name": "other-region",
                "base_url": e2e.fake.url + "/region-b/v1",
                "organization": "org-b",
            },
        ],
    )
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(401), key=inst.api_keys["main"])
    raw = e2e.openai(key).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert "x-gateway-key-name" not in raw.headers  # provider keys are not named to clients
    first, second = e2e.fake.requests()
    assert first.path == "/v1/chat/completions"
    assert first.headers["openai-organization"] == "org-main"
    assert second.path == "/region-b/v1/chat/completions"
    assert second.headers["openai-organization"] == "org-b"
    assert second.headers["authorization"] == f"Bearer {inst.api_keys['other-region']}"


FAULTS = {
    "500": Behaviour.fail(500),
    "503": Behaviour.fail(503),
    "reset": Behaviour(mode="reset"),
    "close": Behaviour(mode="close"),
    "timeout": Behaviour.slow(5),
    "stream-error-before-content": Behaviour(mode="stream_error", after_chunks=0),
    "stream-garbage": Behaviour(mode="garbage"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_instance_failover(e2e: World, fault: str) -> None:
    stream = fault.startswith("stream")
    first = e2e.provider("first", timeout=0.5)
    second = e2e.provider("second")
    e2e.mapping("m", first, priority=1)
    e2e.mapping("m", second, priority=2)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(FAULTS[fault], key=first.api_key)
    raw = e2e.openai(key).chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, stream=stream
    )
    assert raw.headers["x-gateway-provider-id"] == str(second.id)
    assert raw.headers["x-gateway-attempts"] == "2"
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        text = raw.parse().choices[0].message.content
    assert text == "Echo: hi"
    assert [r.api_key for r in e2e.fake.requests()] == [first.api_key, second.api_key]


def test_upstream_400_is_passed_through_without_retry(e2e: World) -> None:
    inst = e2e.provider("strict", max_retries=3)
    spare = e2e.provider("spare")
    e2e.mapping("m", inst, priority=1)
    e2e.mapping("m", spare, priority=2)
    key = e2e.vkey()
    e2e.publish()
    upstream_error = {
        "error": {
            "message": "Invalid value for 'temperature'.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        }
    }
    e2e.fake.behave(Behaviour.fail(400, body=upstream_error))
    error = assert_openai_error(chat_raw(e2e, key), 400)
    assert error["message"] == "Invalid value for 'temperature'."
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_value"
    assert error["provider_id"] == inst.id
    assert len(e2e.fake.requests()) == 1  # the same request would fail anywhere


def test_upstream_500_on_the_only_instance(e2e: World) -> None:
    inst = e2e.provider("flaky", max_retries=1)
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(500, "boom"))
    response = chat_raw(e2e, key)
    assert 500 <= response.status_code < 600
    error = assert_openai_error(response, response.status_code)
    assert error["provider_id"] == inst.id
    assert len(e2e.fake.requests()) == 2  # the first try and one retry (max_retries=1)


def test_unreachable_only_instance_is_502_with_provider_id(e2e: World) -> None:
    inst = e2e.provider("gone", base_url="http://127.0.0.1:9/v1")  # discard port: refused
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    error = assert_openai_error(chat_raw(e2e, key), 502)
    assert error["provider_id"] == inst.id and error["code"] == "connect_error"


def test_garbage_answer_is_502_not_relayed(e2e: World) -> None:
    inst = e2e.provider("garbage")
    e2e.mapping("m", inst)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour(mode="garbage"))
    response = chat_raw(e2e, key)
    error = assert_openai_error(response, 502)
    assert error["provider_id"] == inst.id
    assert "<<<" not in response.text


def _sse_payloads(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("mode", ["stream_error", "stream_abort"])
def test_stream_failing_after_content_ends_with_an_error_event(e2e: World, mode: str) -> None:
    first = e2e.provider("first")
    second = e2e.provider("second")
    e2e.mapping("m", first, priority=1)
    e2e.mapping("m", second, priority=2)
    key = e2e.vkey()
    e2e.publish()
    e2e.fake.behave(Behaviour(mode=mode, after_chunks=2))
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]}
    response = chat_raw(e2e, key, body)
    assert response.status_code == 200  # the stream had started: no failover any more
    payloads = _sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )
    assert text == "Echo: a"  # the two content chunks sent before the failure
    assert events[-1]["error"]["provider_id"] == first.id
    assert len(e2e.fake.requests()) == 1
