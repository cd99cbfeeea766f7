"""The reverse direction, for the Anthropic-format front door (``POST /v1/messages``).

A client speaking Anthropic's Messages API is served by translating its request to OpenAI's
chat-completions format (the pipeline's lingua franca, whatever the upstream) and the OpenAI
answer back. Pure functions, no I/O.

Mid-conversation ``system`` messages become OpenAI system messages at their position.
``thinking`` / ``output_config.effort`` become ``reasoning_effort`` where the upstream model
takes it (:mod:`providers.translators.reasoning`). What has no OpenAI equivalent is left out
and named in :attr:`Translation.dropped` (the gateway reports it in a response header):
fields such as ``top_k``, ``context_management`` or ``mcp_servers`` and any field it does not
know, thinking blocks of earlier turns, content blocks without text (blocks of unknown types
that carry text keep it). Cache-control markers are left out silently (a hint, no meaning).
Reasoning in the answer is not returned as thinking blocks (they would need a signature no
OpenAI upstream can issue); server tools are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.adapters.base import UnsupportedOperation, Usage
from providers.translators.guard import client_shaped
from providers.translators.openai_anthropic_request import parse_arguments
from providers.translators.reasoning import requested_effort

#: OpenAI ``finish_reason`` -> Anthropic ``stop_reason``. OpenAI does not say whether a stop
#: sequence ended the text, so "stop" is always ``end_turn``.
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish: Any) -> str:
    return STOP_REASONS.get(str(finish), "end_turn") if finish else "end_turn"


def anthropic_usage(usage: Usage) -> dict[str, int]:
    """OpenAI counts (``prompt_tokens`` includes cache reads) in Anthropic's names."""
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens, 0),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


# -- request: Anthropic -> OpenAI ---------------------------------------------------------------
#: Request fields the translation carries over (or that only steer it, like ``stream``).
TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
    }
)
#: Reasoning settings: carried over as ``reasoning_effort`` where the upstream model reasons.
REASONING_FIELDS = frozenset({"thinking", "output_config"})


@dataclass(slots=True)
class Translation:
    """A Messages request in OpenAI's terms, before the upstream model is known.

    ``body`` has no ``reasoning_effort``: :meth:`for_model` adds it for a model that takes it.
    ``dropped`` names what no OpenAI upstream can take (top-level fields, ``content:<type>``
    for content blocks); ``effort_fields`` the reasoning settings, dropped only where the
    model does not reason.
    """

    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    effort: str | None = None
    effort_fields: list[str] = field(default_factory=list)

    def for_model(self, reasoning: bool) -> tuple[dict[str, Any], list[str]]:
        """The body for a model that does (or does not) take ``reasoning_effort``, and every
        request field or block type left out for it."""
        if not reasoning:
            return self.body, self.dropped + self.effort_fields
        body = dict(self.body)
        if "max_tokens" in body:
            # OpenAI's reasoning models refuse max_tokens and take max_completion_tokens.
            body["max_completion_tokens"] = body.pop("max_tokens")
        if self.effort is None:
            return body, self.dropped + self.effort_fields
        body["reasoning_effort"] = self.effort
        return body, list(self.dropped)


class _Dropped(list[str]):
    """Names of what the translation left out, each once, in order."""

    def add(self, name: str) -> None:
        if name not in self:
            self.append(name)


def anthropic_request_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat-completions body for a Messages API request body (for a model that
    takes no reasoning settings; :func:`translate_request` tells what was left out)."""
    return translate_request(body).body


@client_shaped
def translate_request(body: Mapping[str, Any]) -> Translation:
    """A Messages API request body in OpenAI's terms (see :class:`Translation`).

    Raises ``UnsupportedOperation`` only for what cannot be sent at all (a message that is
    not an object, a role the Messages API does not have, server tools, images or documents
    by a reference an OpenAI upstream cannot read).
    """
    dropped = _Dropped()
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else _blocks_text(system, "\n\n", dropped)
        messages.append({"role": "system", "content": text})
    for i, msg in enumerate(body.get("messages") or []):
        if not isinstance(msg, Mapping):
            raise UnsupportedOperation(f"messages.{i}: each message must be an object")
        role = msg.get("role")
        if role == "assistant":
            messages.append(_assistant_message(msg.get("content"), dropped))
        elif role == "user":
            messages.extend(_user_messages(msg.get("content"), dropped))
        elif role == "system":
            # A mid-conversation system message: an OpenAI system message at that position.
            content = msg.get("content")
            text = content if isinstance(content, str) else _blocks_text(content, "\n\n", dropped)
            if text:
                messages.append({"role": "system", "content": text})
        else:
            # Anthropic's own wording: clients match on it to retry without a beta.
            raise UnsupportedOperation(
                f'messages.{i}: Unexpected role "{role}". The Messages API accepts a top-level '
                f'`system` parameter, not "{role}" as an input message role.'
            )

    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    # ``max_tokens`` rather than ``max_completion_tokens``: every OpenAI-wire server here
    # (Azure's older API versions, Ollama, vLLM) knows it. The anthropic adapter reads both.
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        # message_delta must report output tokens: ask for the final usage chunk.
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if user:
        out["user"] = str(user)
    tools = [_tool(t) for t in body.get("tools") or []]
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if tools and kind in ("auto", "any", "none"):
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        elif tools and kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        if tools and choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    for name in body:
        if name not in TRANSLATED_FIELDS and name not in REASONING_FIELDS:
            dropped.add(name)
    config = body.get("output_config")
    if isinstance(config, Mapping):
        for name in config:
            if name != "effort":
                dropped.add(f"output_config.{name}")
    elif config is not None:
        dropped.add("output_config")
    effort, effort_fields = requested_effort(body)
    return Translation(out, list(dropped), effort, effort_fields)


def _joined_text(blocks: Any, sep: str) -> str:
    return sep.join(
        str(b.get("text") or "")
        for b in blocks or []
        if isinstance(b, Mapping) and b.get("type") == "text"
    )


def _block_text(block: Mapping[str, Any]) -> str | None:
    """The text a block of a type the translation does not know carries, if any: its
    ``text``, else the text blocks of its ``content`` (search results, say)."""
    text = block.get("text")
    if isinstance(text, str):
        return text
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        joined = _joined_text(content, "\n")
        return joined or None
    return None


def _blocks_text(blocks: Any, sep: str, dropped: _Dropped) -> str:
    """The text of a list of blocks (system prompts); blocks without text are dropped."""
    texts: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Mapping):
            continue
        text = _block_text(block)
        if text is None:
            dropped.add(f"content:{block.get('type')}")
        else:
            texts.append(text)
    return sep.join(texts)


def _user_messages(content: Any, dropped: _Dropped) -> list[dict[str, Any]]:
    """One Anthropic user turn -> OpenAI ``tool`` messages (one per tool_result, first, as
    OpenAI wants them right after the assistant's tool calls) and a user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        if not isinstance(block, Mapping):
            raise UnsupportedOperation("content blocks must be objects")
        if block.get("type") == "tool_result":
            out.append(_tool_message(block, dropped))
        else:
            part = _user_part(block, dropped)
            if part is not None:
                parts.append(part)
    if len(parts) == 1 and parts[0]["type"] == "text":
        # A plain string is what every OpenAI-compatible server accepts.
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_message(block: Mapping[str, Any], dropped: _Dropped) -> dict[str, Any]:
    content = block.get("content")
    if isinstance(content, list):
        # OpenAI tool messages carry text only: images and the like in a result are left out.
        for b in content:
            if isinstance(b, Mapping) and b.get("type") != "text":
                dropped.add(f"tool_result:{b.get('type')}")
        content = _joined_text(content, "\n")
    text = str(content or "")
    if block.get("is_error"):
        # OpenAI has no error flag on tool results; say it in the text the model reads.
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}


def _user_part(block: Mapping[str, Any], dropped: _Dropped) -> dict[str, Any] | None:
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        return {"type": "text", "text": str(block.get("text") or "")}
    if kind == "image":
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = str(source.get("url"))
        else:
            raise UnsupportedOperation("only base64 and url images can be sent upstream")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        if source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data") or "")}
        if source.get("type") == "base64":
            data_url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            name = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": {"file_data": data_url, "filename": name}}
        raise UnsupportedOperation("only base64 and text documents can be sent upstream")
    text = _block_text(block)
    if text is not None and kind not in ("thinking", "redacted_thinking"):
        return {"type": "text", "text": text}
    # Thinking of earlier turns and blocks without text have no OpenAI form.
    dropped.add(f"content:{kind}")
    return None


def _assistant_message(content: Any, dropped: _Dropped) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content or []:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind not in ("thinking", "redacted_thinking") and _block_text(block) is not None:
            texts.append(str(_block_text(block)))
        else:
            # Thinking of earlier turns (OpenAI upstreams take no reasoning input), server
            # tool calls and their results: nothing an OpenAI upstream can read.
            dropped.add(f"content:{kind}")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type", "custom") not in ("custom", None):
        # Server tools (web search, code execution...) run at Anthropic only.
        kind = tool.get("type") if isinstance(tool, Mapping) else tool
        raise UnsupportedOperation(f"tool type {kind!r} exists only at Anthropic")
    fn: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description"):
        fn["description"] = tool["description"]
    fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": fn}


# -- response: OpenAI -> Anthropic --------------------------------------------------------------
def openai_response_to_anthropic(data: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Messages API response for an OpenAI ``chat.completion``; ``model`` is the name the
    client asked for (the gateway's alias), not the upstream's."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = _joined_text(text, "")
    text = text or message.get("refusal")
    if text:
        content.append({"type": "text", "text": str(text)})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": parse_arguments(fn.get("arguments")),
            }
        )
    return {
        "id": data.get("id") or "",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(Usage.from_openai(data.get("usage"))),
    }
