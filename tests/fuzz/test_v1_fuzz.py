"""Property-based fuzz of the client API: hostile bodies through the gateway (in process) to
the loopback fake upstream, on every provider path an endpoint has (native, translated, mock).

The property: never a 5xx, and every 4xx in the caller's error shape (OpenAI's on the OpenAI
endpoints, Anthropic's on ``/v1/messages*``). A body the real API would refuse may go to the
upstream, whose 400 is relayed: the gateway checks only what routing and safety need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import strategies as fz
from tests.fuzz.conftest import FUZZ, check_anthropic_answer, check_openai_answer
from tests.fuzz.world import send
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db(transaction=True)

#: endpoint path -> (base body, mutable paths, aliases to try, answer check)
ENDPOINTS: dict[str, tuple[Callable[[str], dict[str, Any]], list[tuple[Any, ...]], list[str]]] = {
    "/v1/chat/completions": (fz.chat_base, fz.CHAT_PATHS, ["gpt", "claude", "mock"]),
    "/v1/embeddings": (fz.embeddings_base, fz.EMBEDDINGS_PATHS, ["gpt", "mock"]),
    "/v1/messages": (fz.messages_base, fz.MESSAGES_PATHS, ["claude", "gpt", "mock"]),
    "/v1/messages/count_tokens": (fz.messages_base, fz.MESSAGES_PATHS, ["claude", "gpt"]),
    "/v1/responses": (fz.responses_base, fz.RESPONSES_PATHS, ["gpt", "compat", "claude", "mock"]),
}


def check(path: str, response: httpx.Response) -> None:
    if path.startswith("/v1/messages"):
        check_anthropic_answer(response)
    else:
        check_openai_answer(response)


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_hostile_json_bodies(path: str, world: str, gateway: InProcessGateway) -> None:
    base, paths, aliases = ENDPOINTS[path]

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        alias = data.draw(st.sampled_from(aliases), label="alias")
        body = data.draw(fz.hostile_body(base(alias), paths), label="body")
        check(path, send(gateway, path, world, fz.encode(body)))

    run()


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b'"model"',
            b"{",
            b'{"model": NaN}',
            b'{"model": Infinity}',
            b'{"model": 1e400}',
            b'{"model": "gpt", "messages": [}',
            b"\xff\xfe{}",
            b'{"model": "gpt"}' * 2,
            b"model=gpt&messages=hi",
            b"[" * 2000 + b"]" * 2000,
            b'{"a":' * 300 + b"1" + b"}" * 300,
        ]
    ),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "",
    ]
)


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_non_json_bodies_and_content_types(
    path: str, world: str, gateway: InProcessGateway
) -> None:
    base, _, aliases = ENDPOINTS[path]

    @FUZZ
    @given(raw=RAW_BODIES | st.just(fz.encode(base(aliases[0]))), content_type=CONTENT_TYPES)
    def run(raw: bytes, content_type: str) -> None:
        check(path, send(gateway, path, world, raw, content_type))

    run()
