"""OpenAI chat-completions request -> Anthropic Messages request (pure: no I/O).

The output is built from an allow-list of fields, so OpenAI-only fields Anthropic would reject
(``n``, ``logprobs``, ``top_logprobs``, ``presence_penalty``, ``frequency_penalty``, ``seed``,
``stream_options``, ``logit_bias``, ``store``, ``modalities``, ``audio``, ``prediction``,
``reasoning_effort``, ``service_tier``, OpenAI ``metadata``, legacy ``functions``...) are dropped
without a special case each.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from providers.adapters.base import UnsupportedOperation
from providers.translators.guard import client_shaped

#: Anthropic requires ``max_tokens``; OpenAI does not. Used when the client sent neither
#: ``max_completion_tokens`` nor ``max_tokens``.
DEFAULT_MAX_TOKENS = 4096

Block = dict[str, Any]
Message = dict[str, Any]

# Fields without an OpenAI equivalent that a client aiming at an Anthropic-backed alias may send
# on purpose; passed through unchanged (Anthropic validates them).
_PASSTHROUGH = ("top_k", "thinking")

_JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object only: no prose, no Markdown code fences."
)


@client_shaped
def openai_request_to_anthropic(
    body: Mapping[str, Any], *, model: str, stream: bool
) -> dict[str, Any]:
    """The Messages API body for the OpenAI chat-completions ``body``, aimed at ``model``.

    Raises ``UnsupportedOperation`` for input Anthropic cannot take (audio parts, OpenAI file
    ids, non-function tools).
    """
    system, messages = _split_messages(body.get("messages") or [])
    instruction = _response_format_instruction(body.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})

    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body)}
    if system:
        # One plain block reads best as a string; several (or cache-marked) stay blocks.
        only = system[0]
        out["system"] = only["text"] if len(system) == 1 and len(only) == 2 else system
    out["messages"] = messages

    temperature = body.get("temperature")
    if temperature is not None:
        # OpenAI accepts 0..2, Anthropic 0..1: clamp rather than rescale, so the common
        # 0..1 settings mean the same on both sides.
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    # Recent Claude models reject temperature and top_p together; temperature is the
    # more common knob, so it wins.
    if body.get("top_p") is not None and temperature is None:
        out["top_p"] = body["top_p"]

    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop

    tools = [_tool(t) for t in body.get("tools") or []]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    # Without tools a tool_choice (even "none") is an error upstream: drop it.

    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": str(user)}
    for name in _PASSTHROUGH:
        if body.get(name) is not None:
            out[name] = body[name]
    if stream:
        out["stream"] = True
    return out


# -- messages ---------------------------------------------------------------------------------
def _split_messages(raw: Any) -> tuple[list[Block], list[Message]]:
    """(system text blocks, alternating user/assistant messages) from OpenAI ``messages``."""
    if not isinstance(raw, list):
        raise UnsupportedOperation("messages must be a list")
    system: list[Block] = []
    messages: list[Message] = []
    for msg in raw:
        if not isinstance(msg, Mapping):
            raise UnsupportedOperation("each message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            # Anthropic has one top-level system prompt: system messages anywhere in the
            # conversation are hoisted there, in order. Only text is allowed in it.
            system.extend(b for b in _content_blocks(msg.get("content")) if b["type"] == "text")
        elif role == "user":
            _append(messages, "user", _content_blocks(msg.get("content")))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(msg))
        elif role == "tool":
            _append(messages, "user", [_tool_result(msg)])
        else:
            raise UnsupportedOperation(f"message role {role!r} is not supported")
    _finalize(messages)
    return system, messages


def _append(messages: list[Message], role: str, blocks: list[Block]) -> None:
    """Add a turn, merging it into the previous one when the role repeats: Anthropic requires
    user/assistant alternation (consecutive tool results become one user turn this way)."""
    if not blocks:
        # Anthropic rejects empty turns; an empty OpenAI message carries nothing anyway.
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": list(blocks)})


def _finalize(messages: list[Message]) -> None:
    for i, msg in enumerate(messages):
        blocks: list[Block] = msg["content"]
        if msg["role"] == "user":
            # tool_result blocks must open the user turn that answers a tool_use turn.
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        elif i == len(messages) - 1:
            # A final assistant turn is a prefill, which may not end in whitespace.
            while blocks and blocks[-1]["type"] == "text":
                text = blocks[-1]["text"].rstrip()
                if text:
                    blocks[-1]["text"] = text
                    break
                blocks.pop()
            if not blocks:
                messages.pop()
                return
        if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
            msg["content"] = blocks[0]["text"]


def _assistant_blocks(msg: Mapping[str, Any]) -> list[Block]:
    # ``reasoning_content`` from an earlier answer is dropped: Anthropic only accepts thinking
    # blocks with the signature it issued, which OpenAI's format has no place for.
    blocks = _content_blocks(msg.get("content"))
    for call in msg.get("tool_calls") or []:
        if not isinstance(call, Mapping) or call.get("type", "function") != "function":
            raise UnsupportedOperation("only function tool calls can be sent to anthropic")
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": parse_arguments(fn.get("arguments")),
            }
        )
    return blocks


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call ``arguments`` (a JSON string in OpenAI's format) as the object Anthropic wants.

    Models sometimes emit invalid JSON (e.g. cut off at the token limit) and clients echo it
    back; failing the whole conversation for that helps nobody, so such text is kept under an
    ``arguments`` key instead.
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        return {"arguments": str(arguments)}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _tool_result(msg: Mapping[str, Any]) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id")}
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        parts = [b for b in _content_blocks(content) if b["type"] in ("text", "image")]
        if parts:
            block["content"] = parts
    return block


# -- content parts ----------------------------------------------------------------------------
def _content_blocks(content: Any) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [b for b in (_part_block(p) for p in content) if b is not None]
    raise UnsupportedOperation("message content must be a string or a list of parts")


def _part_block(part: Any) -> Block | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, Mapping):
        raise UnsupportedOperation("content parts must be objects")
    kind = part.get("type")
    block: Block | None
    if kind in ("text", "refusal"):
        text = part.get(kind)
        # Anthropic rejects empty text blocks.
        block = {"type": "text", "text": str(text)} if text else None
    elif kind == "image_url":
        block = _image_block(part.get("image_url"))
    elif kind == "file":
        block = _file_block(part.get("file") or {})
    elif kind == "input_audio":
        raise UnsupportedOperation("anthropic instances do not take audio input")
    else:
        raise UnsupportedOperation(f"content part type {kind!r} is not supported by anthropic")
    if block is not None and part.get("cache_control"):
        # Prompt-caching markers (an Anthropic extension some OpenAI clients send) survive.
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(image: Any) -> Block:
    # OpenAI's ``detail`` has no Anthropic equivalent and is dropped.
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise UnsupportedOperation("image_url part without a url")
    if url.startswith("data:"):
        media_type, data = _parse_data_url(url)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(file: Mapping[str, Any]) -> Block:
    data = file.get("file_data")
    if not data:
        # An OpenAI file id names a file stored at OpenAI: meaningless to Anthropic.
        raise UnsupportedOperation("anthropic instances cannot read OpenAI file ids")
    media_type, payload = (
        _parse_data_url(data) if data.startswith("data:") else ("application/pdf", data)
    )
    if media_type.startswith("image/"):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": payload},
        }
    block: Block
    if media_type == "application/pdf":
        block = {
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": payload},
        }
    elif media_type.startswith("text/"):
        text = base64.b64decode(payload).decode("utf-8", "replace")
        block = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    else:
        raise UnsupportedOperation(f"anthropic instances cannot read {media_type} files")
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _parse_data_url(url: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL; percent-encoded data is re-encoded."""
    header, sep, data = url[5:].partition(",")
    if not sep:
        raise UnsupportedOperation("malformed data: URL")
    params = header.split(";")
    media_type = params[0] or "text/plain"
    if "base64" not in params[1:]:
        data = base64.b64encode(unquote_to_bytes(data)).decode("ascii")
    return media_type, data


# -- parameters -------------------------------------------------------------------------------
def _max_tokens(body: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            return int(value)
    return DEFAULT_MAX_TOKENS


def _stop_sequences(stop: Any) -> list[str]:
    items = [stop] if isinstance(stop, str) else list(stop or [])
    # Anthropic rejects whitespace-only stop sequences; OpenAI clients send "" as "none".
    return [s for s in items if isinstance(s, str) and s.strip()]


def _tool(tool: Any) -> Block:
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        raise UnsupportedOperation("only function tools can be sent to anthropic")
    fn = tool.get("function") or {}
    if not fn.get("name"):
        raise UnsupportedOperation("a function tool needs a name")
    schema = dict(fn.get("parameters") or {})
    # Anthropic requires an object schema; OpenAI lets parameters be omitted. ``strict``
    # has no equivalent and is dropped.
    schema.setdefault("type", "object")
    out: Block = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = schema
    if tool.get("cache_control"):
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> Block | None:
    out: Block | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    elif isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        # Anthropic cannot restrict to a subset of the offered tools; the mode survives.
        mode = (choice.get("allowed_tools") or {}).get("mode")
        out = {"type": "any" if mode == "required" else "auto"}
    else:
        raise UnsupportedOperation(f"tool_choice {choice!r} is not supported by anthropic")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _response_format_instruction(response_format: Any) -> str:
    """A system-prompt instruction standing in for OpenAI's ``response_format``.

    The Messages API has no JSON mode. The robust alternative (a forced tool whose input is the
    answer) would need the response side to know the request, and adapters translate answers
    without it; so JSON mode becomes an instruction. Claude follows it reliably, but nothing
    enforces the schema: clients that need a guarantee must validate.
    """
    if not isinstance(response_format, Mapping):
        return ""
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = orjson.dumps(spec.get("schema") or {}).decode()
        name = spec.get("name")
        named = f' named "{name}"' if name else ""
        return f"{_JSON_OBJECT_INSTRUCTION} It must conform to this JSON Schema{named}: {schema}"
    return ""
