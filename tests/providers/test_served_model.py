"""Every adapter reads which model served a reply, whole or streamed, from the upstream's own
words (OpenAI's and Anthropic's ``model``, Gemini's ``modelVersion``, the Responses API's
``response.model``), for the trace's ``gen_ai.response.model``."""

from __future__ import annotations

import orjson
import pytest

from providers.adapters import get_adapter
from providers.adapters.anthropic.passthrough import (
    AnthropicPassthroughStream,
)
from providers.adapters.anthropic.passthrough import (
    native_response_usage as anthropic_usage,
)
from providers.adapters.openai_responses import (
    ResponsesPassthroughStream,
)
from providers.adapters.openai_responses import (
    native_response_usage as responses_usage,
)

USAGE = {"prompt_tokens": 3, "completion_tokens": 2}
ANTHROPIC_USAGE = {"input_tokens": 3, "output_tokens": 2}


@pytest.mark.parametrize(
    ("provider_type", "reply", "served"),
    [
        (
            "openai",
            {"model": "gpt-4o-2024-08-06", "choices": [], "usage": USAGE},
            "gpt-4o-2024-08-06",
        ),
        (
            "anthropic",
            {
                "type": "message",
                "model": "claude-x-20250929",
                "content": [],
                "usage": ANTHROPIC_USAGE,
            },
            "claude-x-20250929",
        ),
        (
            "gemini",
            {"candidates": [], "modelVersion": "gemini-2.0-flash-001"},
            "gemini-2.0-flash-001",
        ),
        ("openai", {"choices": [], "usage": USAGE}, ""),  # the reply does not say
    ],
)
def test_whole_answers(provider_type: str, reply: dict, served: str) -> None:
    _, usage = get_adapter(provider_type).chat_response(orjson.dumps(reply))
    assert usage.model == served


def test_native_answers() -> None:
    message = {"type": "message", "model": "claude-x-1", "usage": ANTHROPIC_USAGE}
    assert anthropic_usage(orjson.dumps(message)).model == "claude-x-1"
    response = {"object": "response", "model": "gpt-4o-2024-08-06", "usage": {}}
    assert responses_usage(orjson.dumps(response)).model == "gpt-4o-2024-08-06"


def test_streams() -> None:
    openai = get_adapter("openai").chat_stream(include_usage=False)
    openai.feed(orjson.dumps({"model": "gpt-4o-2024-08-06", "choices": []}).decode())
    assert openai.served_model == "gpt-4o-2024-08-06"

    anthropic = get_adapter("anthropic").chat_stream(include_usage=False)
    start = {"type": "message_start", "message": {"id": "m", "model": "claude-x-1", "usage": {}}}
    anthropic.feed(orjson.dumps(start).decode(), "message_start")
    assert anthropic.served_model == "claude-x-1"

    passthrough = AnthropicPassthroughStream()
    passthrough.feed(orjson.dumps(start).decode(), "message_start")
    assert passthrough.served_model == "claude-x-1"

    gemini = get_adapter("gemini").chat_stream(include_usage=False)
    gemini.feed(orjson.dumps({"candidates": [], "modelVersion": "gemini-2.0-flash-001"}).decode())
    assert gemini.served_model == "gemini-2.0-flash-001"

    responses = ResponsesPassthroughStream()
    created = {"type": "response.created", "response": {"model": "gpt-4o-2024-08-06"}}
    responses.feed(orjson.dumps(created).decode(), "response.created")
    assert responses.served_model == "gpt-4o-2024-08-06"
