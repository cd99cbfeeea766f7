"""Token counts of requests for OpenAI-type targets (Anthropic's ``count_tokens``, the
Responses API's ``input_tokens``).

A real BPE tokenizer (``bpe-openai``: tiktoken-compatible, with the o200k_base and cl100k_base
tables inside the wheel, so it works without network; plain ``tiktoken`` downloads its tables
on first use), never characters / 4. The request is first translated to the OpenAI messages
the upstream would get, then counted the way OpenAI's cookbook counts chat messages: 3 tokens
per message, the tokens of every string field, 1 more for a ``name``, 3 to prime the reply.
Tool definitions are counted as the tokens of their JSON text (OpenAI publishes no exact
formula for them); images count 85 tokens each (the fixed part of OpenAI's image cost).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson

from providers.translators.anthropic_openai import anthropic_request_to_openai

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_TOKENS = 85
DEFAULT_ENCODING = "o200k_base"  # gpt-4o, gpt-4.1, o-series; the best guess for others


def _bpe() -> Any:
    # Imported on first use: the module loads its token tables (~70 MB) at import, which every
    # gateway worker would otherwise carry whether or not anyone counts tokens.
    import bpe_openai

    return bpe_openai


@functools.lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    return _bpe().get_encoding(name)


def encoding_name(model: str) -> str:
    """The model's encoding (``cl100k_base`` for gpt-4/3.5), else o200k_base."""
    bpe = _bpe()
    try:
        name = str(bpe.encoding_name_for_model(model))
    except (KeyError, ValueError, bpe.UnsupportedModelError):
        return DEFAULT_ENCODING
    return name if name in ("o200k_base", "cl100k_base") else DEFAULT_ENCODING


def count_text(text: str, model: str = "") -> int:
    # Special-token text ("<|endoftext|>") in user input is ordinary text to count.
    return len(_encoding(encoding_name(model)).encode(text, disallowed_special=()))


def _content_tokens(content: Any, model: str) -> int:
    if isinstance(content, str):
        return count_text(content, model)
    total = 0
    for part in content or []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            total += count_text(str(part.get("text") or ""), model)
        elif part.get("type") == "image_url":
            total += IMAGE_TOKENS
        elif part.get("type") == "file":
            total += count_text(str((part.get("file") or {}).get("filename") or ""), model)
    return total


def count_anthropic_request(body: Mapping[str, Any], *, model: str) -> int:
    """Input tokens of a Messages request sent to the OpenAI-type ``model``."""
    return count_openai_request(anthropic_request_to_openai(body), model=model)


def count_openai_request(openai_body: Mapping[str, Any], *, model: str) -> int:
    """Input tokens of a chat-completions request to ``model``."""
    total = 0
    for message in openai_body["messages"]:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _content_tokens(value, model)
            elif key == "tool_calls":
                for call in value or []:
                    fn = call.get("function") or {}
                    total += count_text(str(fn.get("name") or ""), model)
                    total += count_text(str(fn.get("arguments") or ""), model)
            elif isinstance(value, str):
                total += count_text(value, model)
                if key == "name":
                    total += TOKENS_PER_NAME
    for tool in openai_body.get("tools") or []:
        total += count_text(orjson.dumps(tool.get("function") or {}).decode(), model)
    return total + REPLY_PRIMING
