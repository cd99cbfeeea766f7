"""OpenAI Responses API request -> chat-completions request (pure: no I/O).

For instances that do not speak the Responses API (OpenAI-compatible servers, Ollama, the mock,
and Anthropic through its chat translation). The output is built from an allow-list, so
Responses-only fields (``store``, ``include``, ``truncation``, ``service_tier``,
``prompt_cache_key``, ``metadata``, ``background``, ``max_tool_calls``, ``top_logprobs``...)
are dropped rather than sent to a server that may reject them. Known losses: reasoning items
(and their encrypted content) in the history are dropped; ``text.verbosity`` is dropped;
``allowed_tools`` tool choices keep their mode but not their restriction. Built-in tools
(web search, file search, computer use, code interpreter, image generation, MCP, shell...)
have no chat equivalent and are refused, naming the tool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from providers.adapters.base import UnsupportedOperation
from providers.translators.guard import client_shaped

#: Roles a chat upstream understands; ``developer`` is OpenAI's newer name for ``system``.
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
#: History items with no chat equivalent that carry nothing the model must see again.
_DROPPED_ITEMS = frozenset({"reasoning", "compaction"})


class UnsupportedTool(UnsupportedOperation):
    """A tool (or tool choice) only the Responses API itself can run; ``tool`` is its type."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"The tool type '{tool}' is not supported for this model: its provider instance is "
            "served through chat completions, which only has function tools."
        )
        self.tool = tool


@client_shaped
def input_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's ``input`` as a list of items (a string is one user message)."""
    raw = body.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise UnsupportedOperation("input must be a string or a list of items")
    return [dict(item) for item in raw if isinstance(item, Mapping)]


@client_shaped
def responses_request_to_chat(
    body: Mapping[str, Any], *, history: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The chat-completions body for a Responses request; ``history`` holds the items of the
    conversation so far (``previous_response_id`` resolved by the caller), oldest first."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    for item in [*history, *input_items(body)]:
        _add_item(messages, item)
    if not messages:
        raise UnsupportedOperation("input must contain at least one message")

    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "user"):
        if body.get(name) is not None:
            out[name] = body[name]
    # A namespace groups tools under a name chat completions has no place for (and answers
    # could not name it back): such groups are left out, as their model never saw them.
    tools = [
        _tool(t)
        for t in body.get("tools") or []
        if not (isinstance(t, Mapping) and t.get("type") == "namespace")
    ]
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is not None:
            # Chat servers refuse it without tools, so it only goes along with them.
            out["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    choice = body.get("tool_choice")
    if choice is not None and (tools or isinstance(choice, str)):
        out["tool_choice"] = _tool_choice(choice)
    response_format = _response_format((body.get("text") or {}).get("format"))
    if response_format is not None:
        out["response_format"] = response_format
    effort = (body.get("reasoning") or {}).get("effort")
    if isinstance(effort, str) and effort:
        out["reasoning_effort"] = effort
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


# -- items -----------------------------------------------------------------------------------
def _add_item(messages: list[dict[str, Any]], item: Mapping[str, Any]) -> None:
    kind = item.get("type") or ("message" if "role" in item else "")
    if kind == "message":
        _add_message(messages, item)
    elif kind == "function_call":
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {
                "name": str(item.get("name") or ""),
                "arguments": _arguments(item.get("arguments")),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)  # parallel calls: one assistant turn
        elif last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
            last["tool_calls"] = [call]  # the text the model said before calling
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        messages.append(
            {
                "role": "tool",
                "tool_call_id": str(item.get("call_id") or ""),
                "content": _output_text(item.get("output")),
            }
        )
    elif kind in _DROPPED_ITEMS:
        return
    else:
        raise UnsupportedOperation(
            f"input items of type '{kind or 'unknown'}' cannot be sent to this model "
            "(its provider instance is served through chat completions)"
        )


def _add_message(messages: list[dict[str, Any]], item: Mapping[str, Any]) -> None:
    role = _ROLES.get(str(item.get("role") or ""))
    if role is None:
        raise UnsupportedOperation(f"unknown message role '{item.get('role')}'")
    content = item.get("content")
    if role in ("assistant", "system") or isinstance(content, str):
        text = content if isinstance(content, str) else _joined_text(content)
        messages.append({"role": role, "content": text})
        return
    messages.append({"role": role, "content": [_part(p) for p in content or []]})


def _joined_text(content: Any) -> str:
    parts = content if isinstance(content, list) else []
    return "".join(
        str(p.get("text") or p.get("refusal") or "") for p in parts if isinstance(p, Mapping)
    )


def _part(part: Any) -> dict[str, Any]:
    if not isinstance(part, Mapping):
        raise UnsupportedOperation("each content part must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not url:
            raise UnsupportedOperation("input_image by file_id needs the Responses API itself")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file: dict[str, Any] = {
            k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)
        }
        if not file:
            raise UnsupportedOperation("input_file by file_url needs the Responses API itself")
        return {"type": "file", "file": file}
    raise UnsupportedOperation(f"content parts of type '{kind}' cannot be sent to this model")


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _joined_text(output)
    return orjson.dumps(output).decode()


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return orjson.dumps(arguments if arguments is not None else {}).decode()


# -- tools and formats ------------------------------------------------------------------------
def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        raise UnsupportedOperation("each tool must be an object")
    kind = str(tool.get("type") or "")
    if kind != "function":
        raise UnsupportedTool(kind or "unknown")
    function: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        function["strict"] = bool(tool["strict"])
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if not isinstance(choice, Mapping):
        return "auto"
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "allowed_tools":
        return "required" if choice.get("mode") == "required" else "auto"
    raise UnsupportedTool(str(kind or "unknown"))


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, Mapping):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    return None
