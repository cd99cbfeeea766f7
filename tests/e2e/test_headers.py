"""What the upstream receives: each instance's own custom headers, auth and URL form."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SERVER_ENV_VALUE, SERVER_ENV_VAR, World
from tests.factories import AZURE_API_VERSION

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hi"}]


def test_each_instance_sends_exactly_its_own_custom_headers(e2e: World) -> None:
    a = e2e.provider(
        "openai-a",
        "openai",
        custom_headers={"X-Environment": "production", "X-Team": f"${{{SERVER_ENV_VAR}}}"},
        forward_headers=["X-Trace-Id"],
    )
    b = e2e.provider(
        "openai-b",
        "openai",
        custom_headers={"X-Environment": "development", "X-Only-B": "b-value"},
    )
    e2e.mapping("model-a", a)
    e2e.mapping("model-b", b)
    key = e2e.vkey()
    e2e.publish()
    client = e2e.openai(
        key, default_headers={"X-Client-Secret": "do-not-forward", "X-Trace-Id": "trace-123"}
    )
    # Interleaved, streaming and not: no header may stick to the shared connection pool.
    for model in ("model-a", "model-b", "model-a", "model-b"):
        client.chat.completions.create(model=model, messages=MESSAGES)
    for model in ("model-b", "model-a"):
        list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))

    seen_a = e2e.fake.requests(key=a.api_key)
    seen_b = e2e.fake.requests(key=b.api_key)
    assert len(seen_a) == 3 and len(seen_b) == 3
    assert len(e2e.fake.requests()) == 6  # every request carried one of the two keys
    for req in seen_a:
        assert req.headers["x-environment"] == "production"
        assert req.headers["x-team"] == SERVER_ENV_VALUE  # ${VAR} from the server's env
        assert "x-only-b" not in req.headers
        assert req.headers["x-trace-id"] == "trace-123"  # allow-listed on a
    for req in seen_b:
        assert req.headers["x-environment"] == "development"
        assert req.headers["x-only-b"] == "b-value"
        assert "x-team" not in req.headers
        assert "x-trace-id" not in req.headers  # not allow-listed on b
    for req in seen_a + seen_b:
        assert "x-client-secret" not in req.headers
        assert [k for k, _ in req.raw_headers].count("Authorization") <= 1
        assert all(key not in value for value in req.headers.values())  # the virtual key
        assert req.headers["authorization"] != f"Bearer {key}"


def test_custom_headers_on_azure_and_anthropic_instances(e2e: World) -> None:
    azure = e2e.provider("az", "azure_openai", custom_headers={"X-Region": "westeurope"})
    claude = e2e.provider("claude", "anthropic", custom_headers={"anthropic-beta": "tools-x"})
    e2e.mapping("az-model", azure)
    e2e.mapping("claude-model", claude)
    key = e2e.vkey()
    e2e.publish()
    client = e2e.openai(key)
    client.chat.completions.create(model="az-model", messages=MESSAGES)
    client.chat.completions.create(model="claude-model", messages=MESSAGES)
    [az_req] = e2e.fake.requests(key=azure.api_key)
    [claude_req] = e2e.fake.requests(key=claude.api_key)
    assert az_req.headers["x-region"] == "westeurope" and "anthropic-beta" not in az_req.headers
    assert (
        claude_req.headers["anthropic-beta"] == "tools-x" and "x-region" not in claude_req.headers
    )


@pytest.mark.parametrize("stream", [False, True])
def test_azure_wire_format(e2e: World, stream: bool) -> None:
    azure = e2e.provider("azure-eu", "azure_openai")
    e2e.mapping("gpt-4o", azure, "my-gpt4o-deployment")
    key = e2e.vkey()
    e2e.publish()
    response = e2e.openai(key).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=stream
    )
    if stream:
        # Azure's first chunk has no choices; the SDK must still assemble the text.
        chunks = list(response)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = response.choices[0].message.content
    assert text == "Echo: hi"
    [req] = e2e.fake.requests()
    assert req.method == "POST"
    assert req.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert req.query == {"api-version": AZURE_API_VERSION}
    assert req.headers["api-key"] == azure.api_key
    assert "authorization" not in req.headers


def test_whole_answers_are_sized_and_streams_chunked(e2e: World) -> None:
    inst = e2e.provider("sized")
    e2e.mapping("sized-model", inst)
    key = e2e.vkey()
    e2e.publish()
    http = e2e.http()
    auth = {"authorization": f"Bearer {key}"}
    chat = {"model": "sized-model", "messages": MESSAGES}

    answer = http.post("/v1/chat/completions", json=chat, headers=auth)
    error = http.post("/v1/chat/completions", json={**chat, "model": "nope"}, headers=auth)
    with http.stream(
        "POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=auth
    ) as s:
        stream_headers, stream_body = s.headers, s.read()

    for whole, status in ((answer, 200), (error, 404)):
        assert whole.status_code == status, whole.text
        assert whole.headers["content-length"] == str(len(whole.content))
        assert "transfer-encoding" not in whole.headers
    # A stream's length is not known up front: chunked, as before.
    assert stream_headers["transfer-encoding"] == "chunked"
    assert "content-length" not in stream_headers
    assert stream_body.rstrip().endswith(b"data: [DONE]")
