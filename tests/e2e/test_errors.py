"""Client errors: status and OpenAI error shape, and none of them reaches an upstream."""

from __future__ import annotations

from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def world(e2e: World) -> World:
    inst = e2e.provider("errors-inst")
    e2e.mapping("allowed", inst)
    e2e.mapping("forbidden", inst)
    return e2e


def error_of(response: httpx.Response, status: int) -> dict:
    """The ``error`` object, after checking status and the exact OpenAI shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def post(world: World, key: str | None, content: bytes | None = None, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers.update(kw.pop("headers", {}))
    if content is not None:
        return world.http().post(
            "/v1/chat/completions",
            content=content,
            headers={**headers, "content-type": "application/json"},
        )
    return world.http().post("/v1/chat/completions", headers=headers, **kw)


def test_missing_key(world: World) -> None:
    world.vkey()
    world.publish()
    error = error_of(post(world, None, json={"model": "allowed", "messages": MESSAGES}), 401)
    assert error["code"] == "missing_api_key" and error["type"] == "authentication_error"
    models = world.http().get("/v1/models")
    assert error_of(models, 401)["code"] == "missing_api_key"


def test_unknown_disabled_and_expired_keys(world: World) -> None:
    disabled = world.vkey(is_enabled=False)
    expired = world.vkey(expires_at=timezone.now() - timedelta(minutes=1))
    world.publish()
    for key, code in [
        ("sk-gw-not-a-key", "invalid_api_key"),
        (disabled, "api_key_disabled"),
        (expired, "api_key_expired"),
    ]:
        body = {"model": "allowed", "messages": MESSAGES}
        assert error_of(post(world, key, json=body), 401)["code"] == code
        with pytest.raises(openai.AuthenticationError) as info:
            world.openai(key).chat.completions.create(model="allowed", messages=MESSAGES)
        assert info.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            world.openai(key).models.list()
    assert world.fake.requests() == []


def test_x_api_key_header_authenticates(world: World) -> None:
    key = world.vkey()
    world.publish()
    response = world.http().post(
        "/v1/chat/completions",
        json={"model": "allowed", "messages": MESSAGES},
        headers={"x-api-key": key},
    )
    assert response.status_code == 200
    assert "x-api-key" not in world.fake.requests()[0].headers  # not forwarded upstream


def test_alias_not_allowed_answers_like_an_unknown_one(world: World) -> None:
    """404 model_not_found, as for an alias that does not exist: a key never learns which
    aliases other tenants have."""
    key = world.vkey(["allowed"])
    world.publish()
    with pytest.raises(openai.NotFoundError) as info:
        world.openai(key).chat.completions.create(model="forbidden", messages=MESSAGES)
    assert info.value.status_code == 404
    error = error_of(post(world, key, json={"model": "forbidden", "messages": MESSAGES}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["message"] == "The model 'forbidden' does not exist."
    assert world.fake.requests() == []


def test_unknown_alias_is_404_model_not_found(world: World) -> None:
    key = world.vkey()
    world.publish()
    with pytest.raises(openai.NotFoundError):
        world.openai(key).chat.completions.create(model="no-such-model", messages=MESSAGES)
    error = error_of(post(world, key, json={"model": "no-such-model", "messages": MESSAGES}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert world.fake.requests() == []


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b'{"model": "allowed", "messages": [', None, "invalid_json"),
        (b"", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_body"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", None),
        (b'{"model": "allowed"}', "messages", None),
        (b'{"model": 42, "messages": [{"role": "user", "content": "hi"}]}', "model", None),
        (b'{"model": "allowed", "messages": "hi"}', "messages", None),
        (b'{"model": "allowed", "messages": []}', "messages", None),
        (b'{"model": "allowed", "messages": [{"content": "hi"}]}', "messages[0].role", None),
        (
            b'{"model": "allowed", "messages": [{"role": "user", "content": 5}]}',
            "messages[0].content",
            None,
        ),
        (
            b'{"model": "allowed", "messages": [{"role": "user", "content": "x"}], '
            b'"stream": "yes"}',
            "stream",
            None,
        ),
        (
            b'{"model": "allowed", "messages": [{"role": "user", "content": "x"}], '
            b'"temperature": "hot"}',
            "temperature",
            None,
        ),
        (
            b'{"model": "allowed", "messages": [{"role": "user", "content": "x"}], '
            b'"max_tokens": -1}',
            "max_tokens",
            None,
        ),
    ],
    ids=[
        "malformed-json",
        "empty-body",
        "not-an-object",
        "missing-model",
        "missing-messages",
        "model-not-string",
        "messages-not-array",
        "messages-empty",
        "message-without-role",
        "content-wrong-type",
        "stream-not-bool",
        "temperature-not-number",
        "max-tokens-negative",
    ],
)
def test_bad_request_bodies_are_400(
    world: World, body: bytes, param: str | None, code: str | None
) -> None:
    key = world.vkey()
    world.publish()
    error = error_of(post(world, key, content=body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert world.fake.requests() == []


def test_bad_embeddings_body_is_400(world: World) -> None:
    key = world.vkey()
    world.publish()
    response = world.http().post(
        "/v1/embeddings", json={"model": "allowed"}, headers={"authorization": f"Bearer {key}"}
    )
    assert error_of(response, 400)["param"] == "input"


def test_unknown_endpoint_and_wrong_method(world: World) -> None:
    key = world.vkey()
    world.publish()
    auth = {"authorization": f"Bearer {key}"}
    assert error_of(world.http().get("/v1/nothing-here", headers=auth), 404)["code"]
    response = world.http().get("/v1/chat/completions", headers=auth)
    error_of(response, 405)
    assert response.headers["allow"] == "POST"
