"""Hypothesis strategies for hostile ``/v1`` request bodies.

A body starts as a valid request for its endpoint and then takes one to three mutations: a
known field (top level or nested: a message's content, a content block, a tool) replaced by a
value of the wrong kind, an unknown field added, or the whole body replaced. Values include
what JSON allows and Python's defaults trip on: integers beyond 64 bits, floats near the
double limit, nesting deeper than 255 levels, lists where objects go and objects where lists
go. Bodies are encoded with the standard library (orjson refuses big integers), so what is
sent is exactly what a client could send.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: Deeper than the 255 levels at which orjson gives up encoding.
DEEP_LEVELS = (256, 300, 600)


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


HUGE_NUMBERS = st.sampled_from(
    [10**23, -(10**23), 2**63, 2**64 + 1, -(2**63) - 1, 1.7e308, -1.7e308, 5e-324, 10**100]
)
DEEP = st.builds(
    nested, st.sampled_from(DEEP_LEVELS), st.just(1), st.sampled_from(["list", "dict"])
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    HUGE_NUMBERS,
)
SMALL_JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
#: A value of (likely) the wrong kind for any field.
WEIRD = st.one_of(
    SCALARS,
    SMALL_JSON,
    DEEP,
    st.sampled_from(
        [[], {}, [1], [None], [[]], [{}], "", "s", [["x"]], {"type": 1}, [{"type": "x"}]]
    ),
)

TEXT_PART = {"type": "text", "text": "hi"}


def chat_base(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [TEXT_PART]},
        ],
        "max_tokens": 16,
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    }


def embeddings_base(model: str) -> dict[str, Any]:
    return {"model": model, "input": ["hello", "world"]}


def messages_base(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [TEXT_PART]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
            },
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
    }


def responses_base(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "max_output_tokens": 16,
    }


#: Paths a mutation may replace, per endpoint (a path into the base body).
CHAT_PATHS: list[tuple[Any, ...]] = [
    ("messages",), ("messages", 0), ("messages", 1), ("messages", 1, "content"),
    ("messages", 1, "content", 0), ("messages", 1, "content", 0, "type"),
    ("messages", 1, "content", 0, "text"), ("messages", 1, "role"), ("messages", 0, "content"),
    ("stream",), ("stream_options",), ("tools",), ("tools", 0), ("tools", 0, "function"),
    ("tools", 0, "function", "parameters"), ("tool_choice",), ("max_tokens",),
    ("max_completion_tokens",), ("temperature",), ("top_p",), ("n",), ("stop",), ("metadata",),
    ("response_format",), ("logit_bias",), ("user",), ("seed",), ("functions",),
    ("parallel_tool_calls",), ("reasoning_effort",), ("modalities",), ("audio",),
    ("prediction",), ("logprobs",), ("top_logprobs",), ("presence_penalty",), ("store",),
]  # fmt: skip
EMBEDDINGS_PATHS: list[tuple[Any, ...]] = [
    ("input",), ("input", 0), ("dimensions",), ("encoding_format",), ("user",),
]  # fmt: skip
MESSAGES_PATHS: list[tuple[Any, ...]] = [
    ("messages",), ("messages", 0), ("messages", 0, "content"), ("messages", 0, "content", 0),
    ("messages", 0, "content", 0, "type"), ("messages", 0, "content", 0, "text"),
    ("messages", 0, "role"), ("messages", 1, "content", 0, "input"),
    ("messages", 1, "content", 0, "id"), ("messages", 1, "content", 0, "name"),
    ("messages", 2, "content", 0, "content"), ("messages", 2, "content", 0, "tool_use_id"),
    ("system",), ("system", 0), ("system", 0, "text"), ("max_tokens",), ("stream",),
    ("metadata",), ("stop_sequences",), ("temperature",), ("top_p",), ("top_k",), ("tools",),
    ("tools", 0), ("tools", 0, "input_schema"), ("tools", 0, "name"), ("tool_choice",),
    ("thinking",), ("service_tier",), ("container",), ("mcp_servers",),
]  # fmt: skip
RESPONSES_PATHS: list[tuple[Any, ...]] = [
    ("input",), ("input", 0), ("input", 0, "content"), ("input", 0, "content", 0),
    ("input", 0, "content", 0, "type"), ("input", 0, "role"), ("instructions",), ("tools",),
    ("tools", 0), ("tools", 0, "parameters"), ("tools", 0, "type"), ("tool_choice",),
    ("max_output_tokens",), ("stream",), ("store",), ("text",), ("reasoning",), ("metadata",),
    ("temperature",), ("top_p",), ("previous_response_id",), ("include",),
    ("parallel_tool_calls",), ("truncation",), ("stream_options",),
]  # fmt: skip

#: Content blocks real clients send; a mutation may put one, broken, into a message.
ODD_BLOCKS = st.sampled_from(
    [
        {"type": "image", "source": "s"},
        {"type": "image", "source": {"type": "base64", "media_type": 1, "data": 2}},
        {"type": "image_url", "image_url": "s"},
        {"type": "image_url", "image_url": {"url": 1}},
        {"type": "document", "source": []},
        {"type": "tool_use", "id": 1, "name": [], "input": "s"},
        {"type": "tool_result", "tool_use_id": None, "content": {"a": 1}},
        {"type": "thinking", "thinking": 1},
        {"type": "input_image", "image_url": 5},
        {"type": "function_call", "call_id": 1, "arguments": {}},
        {"type": "function_call_output", "output": []},
        {"type": 7},
        {},
    ]
)


def _has(target: Any, step: Any) -> bool:
    if isinstance(target, dict):
        return step in target
    return isinstance(target, list) and isinstance(step, int) and step < len(target)


def _set(body: Any, path: tuple[Any, ...], value: Any) -> None:
    """Replace what ``path`` points at in ``body``; a path the body no longer has is skipped."""
    target = body
    for step in path[:-1]:
        if _has(target, step):
            target = target[step]
        else:
            return
    last = path[-1]
    if isinstance(target, dict) or _has(target, last):
        target[last] = value


@st.composite
def hostile_body(draw: st.DrawFn, base: dict[str, Any], paths: list[tuple[Any, ...]]) -> Any:
    """A valid ``base`` body with one to three mutations, or (rarely) something else whole."""
    if draw(st.integers(0, 19)) == 0:
        return draw(WEIRD)
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["field", "field", "field", "block", "unknown"]))
        if how == "field":
            _set(body, draw(st.sampled_from(paths)), draw(WEIRD))
        elif how == "block":
            block = draw(ODD_BLOCKS)
            for path in paths:
                if path[-1] == 0 and path[-2:-1] == ("content",):
                    _set(body, path, block)
                    break
        else:
            body[draw(st.text(min_size=1, max_size=10))] = draw(WEIRD)
    return body


def encode(body: Any) -> bytes:
    """JSON as a client library would send it (big integers included, never NaN)."""
    return json.dumps(body).encode()
