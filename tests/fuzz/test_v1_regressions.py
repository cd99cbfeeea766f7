"""Bodies the fuzz suite found answering 500, pinned: each must be a 4xx in the caller's shape
(or pass through to the upstream, whose 400 is relayed), on the provider path that crashed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz import strategies as fz
from tests.fuzz.conftest import check_anthropic_answer, check_openai_answer
from tests.fuzz.world import send
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db(transaction=True)


def chat(alias: str, **extra: Any) -> dict[str, Any]:
    return {**fz.chat_base(alias), **extra}


def messages(alias: str, **extra: Any) -> dict[str, Any]:
    return {**fz.messages_base(alias), **extra}


def responses(alias: str, **extra: Any) -> dict[str, Any]:
    return {**fz.responses_base(alias), **extra}


IMAGE_SOURCE_STRING = [{"role": "user", "content": [{"type": "image", "source": "s"}]}]

CASES: list[tuple[str, str, dict[str, Any]]] = [
    # nesting deeper than orjson re-encodes
    ("chat-deep", "/v1/chat/completions", chat("gpt", metadata=fz.nested(300))),
    ("messages-deep", "/v1/messages", messages("claude", metadata=fz.nested(300, kind="dict"))),
    ("responses-deep", "/v1/responses", responses("gpt", text=fz.nested(260))),
    # translated Messages bodies of the wrong kind
    ("messages-metadata", "/v1/messages", messages("gpt", metadata="s")),
    ("messages-stop-sequences", "/v1/messages", messages("gpt", stop_sequences=1)),
    ("messages-image-source", "/v1/messages", messages("gpt", messages=IMAGE_SOURCE_STRING)),
    ("count-image-source", "/v1/messages/count_tokens",
     messages("gpt", messages=IMAGE_SOURCE_STRING)),
    ("messages-tools", "/v1/messages", messages("gpt", tools=[1])),
    # chat to an anthropic instance (translated) and to the in-process mock
    ("chat-stream-options", "/v1/chat/completions", chat("claude", stream=True, stream_options=[])),
    ("chat-tools-anthropic", "/v1/chat/completions", chat("claude", tools=[1])),
    ("chat-tools-mock", "/v1/chat/completions", chat("mock", tools=[1])),
    ("chat-stop-anthropic", "/v1/chat/completions", chat("claude", stop=5)),
    # embeddings on the in-process mock
    ("embeddings-dimensions", "/v1/embeddings", {"model": "mock", "input": "x", "dimensions": "s"}),
    # the Responses object echoes request fields
    ("responses-metadata", "/v1/responses", responses("compat", metadata=True)),
    ("responses-tools-echo", "/v1/responses", responses("mock", tools={"a": 1})),
    # a client field name lands in x-gateway-dropped-params
    ("dropped-param-name", "/v1/messages", messages("gpt", **{"\u7cd7\r\nx-evil": 1})),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_found_by_fuzzing(
    path: str, body: dict[str, Any], world: str, gateway: InProcessGateway
) -> None:
    response = send(gateway, path, world, fz.encode(body))
    if path.startswith("/v1/messages"):
        check_anthropic_answer(response)
    else:
        check_openai_answer(response)
    assert "x-evil" not in response.headers


def test_too_deep_is_a_400_naming_the_limit(world: str, gateway: InProcessGateway) -> None:
    response = send(
        gateway, "/v1/chat/completions", world, fz.encode(chat("gpt", x=fz.nested(300)))
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nesting_too_deep"
    # A deep but reasonable body (a JSON schema nested 150 levels) still goes through.
    ok = send(gateway, "/v1/chat/completions", world, fz.encode(chat("gpt", x=fz.nested(150))))
    assert ok.status_code == 200, ok.text
