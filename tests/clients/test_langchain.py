"""LangChain's provider packages aimed at the gateway, each with ``bind_tools`` producing a
tool call: ``langchain-openai`` ChatOpenAI (chat completions, and ``use_responses_api=True``)
and ``langchain-anthropic`` ChatAnthropic (native anthropic instance and translated)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.clients.conftest import Clients, need_module
from tests.fakes.wire import echo_reply, tool_answer, tool_arguments


def lookup(input: str) -> str:  # the fake calls the first tool with "input"
    """Look a thing up."""
    return input


def round_trip(model: Any) -> None:
    """Plain answer, then a tool call via ``bind_tools`` and the answer to its result."""
    messages = need_module("langchain_core.messages")
    assert model.invoke("hello langchain").text == echo_reply("hello langchain")

    with_tools = model.bind_tools([lookup])
    history: list[Any] = [messages.HumanMessage("look this up")]
    first = with_tools.invoke(history)
    [call] = first.tool_calls
    assert (call["name"], call["args"]) == ("lookup", tool_arguments("look this up"))
    history += [first, messages.ToolMessage("found", tool_call_id=call["id"])]
    assert with_tools.invoke(history).text == tool_answer("found")


@pytest.mark.parametrize("use_responses_api", [False, True], ids=["chat", "responses"])
def test_chat_openai(gw: Clients, use_responses_api: bool) -> None:
    langchain_openai = need_module("langchain_openai")
    model = langchain_openai.ChatOpenAI(
        model="gpt",
        base_url=gw.server.base_url,
        api_key=gw.key,
        use_responses_api=use_responses_api,
        max_retries=0,
    )
    round_trip(model)


@pytest.mark.parametrize("alias", ["claude", "compat-gpt"], ids=["native", "translated"])
def test_chat_anthropic(gw: Clients, alias: str) -> None:
    langchain_anthropic = need_module("langchain_anthropic")
    model = langchain_anthropic.ChatAnthropic(
        model=alias, base_url=gw.server.url, api_key=gw.key, max_retries=0
    )
    round_trip(model)
