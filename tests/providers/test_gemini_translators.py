"""OpenAI chat <-> Gemini generateContent: request, whole answer and stream translation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from providers.adapters.base import UnsupportedOperation
from providers.translators.openai_gemini import gemini_response_to_openai, openai_request_to_gemini
from providers.translators.openai_gemini_stream import GeminiStreamTranslator

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_request_system_roles_tools_images_and_config() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be terse"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        ],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_completion_tokens": 50,
        "temperature": 0.3,
        "stop": "END",
        "response_format": {"type": "json_object"},
    }
    out = openai_request_to_gemini(body)
    assert out["systemInstruction"] == {"parts": [{"text": "be terse"}]}
    assert out["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "what is this"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}},
            ],
        },
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"content": "rain"}}}
            ],
        },
    ]
    assert out["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert out["generationConfig"] == {
        "temperature": 0.3,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
    }


def test_remote_image_urls_are_refused() -> None:
    with pytest.raises(UnsupportedOperation):
        openai_request_to_gemini(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            }
        )


def test_whole_answer_text_tool_call_usage_and_safety() -> None:
    answer, usage = gemini_response_to_openai(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "checking"},
                            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3},
            "modelVersion": "gemini-2.0-flash",
        },
        model="m",
    )
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "checking"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 3)
    assert answer["usage"]["total_tokens"] == 10

    blocked, _ = gemini_response_to_openai(
        {"candidates": [{"finishReason": "SAFETY", "safetyRatings": []}]}, model="m"
    )
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    prompt_blocked, _ = gemini_response_to_openai(
        {"promptFeedback": {"blockReason": "SAFETY"}}, model="m"
    )
    assert prompt_blocked["choices"][0]["finish_reason"] == "content_filter"


def _chunks(lines: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in lines if line != b"data: [DONE]\n\n"]


def test_stream_text_then_tool_call_then_usage() -> None:
    t = GeminiStreamTranslator(include_usage=True, model="g")
    out = t.feed(orjson.dumps({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}).decode())
    assert t.started
    out += t.feed(
        orjson.dumps(
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}}]
                        },
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
            }
        ).decode()
    )
    out += t.finish()
    chunks = _chunks(out)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 6
    assert out[-1] == b"data: [DONE]\n\n"


def test_stream_safety_block_and_error_event() -> None:
    t = GeminiStreamTranslator(include_usage=False)
    out = t.feed('{"candidates": [{"finishReason": "SAFETY"}]}') + t.finish()
    assert _chunks(out)[-1]["choices"][0]["finish_reason"] == "content_filter"
    bad = GeminiStreamTranslator(include_usage=False)
    assert bad.feed('{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}') == []
    assert bad.error is not None and bad.error["message"] == "boom" and not bad.started
