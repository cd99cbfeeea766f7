"""The OpenAI Agents SDK (``openai-agents``) with a function tool, its client aimed at the
gateway: the default mode (Responses API) and chat-completions mode. Tracing export is off,
so nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.conftest import Clients, need_module
from tests.fakes.wire import tool_answer

MODES = [
    pytest.param("responses", id="responses-default"),
    pytest.param("chat_completions", id="chat-completions"),
]


@pytest.fixture
def agents(gw: Clients) -> Iterator[Any]:
    module = need_module("agents")
    openai = need_module("openai")
    # The README's setup: the SDK's OpenAI client on the gateway, tracing export off.
    client = openai.AsyncOpenAI(base_url=gw.server.base_url, api_key=gw.key, max_retries=0)
    module.set_default_openai_client(client, use_for_tracing=False)
    module.set_tracing_disabled(True)
    yield module
    module.set_default_openai_api("responses")


@pytest.mark.parametrize("api", MODES)
async def test_agent_with_function_tool(gw: Clients, agents: Any, api: str) -> None:
    agents.set_default_openai_api(api)
    calls: list[str] = []

    @agents.function_tool
    def lookup(input: str) -> str:  # the fake calls the first tool with "input"
        """Look a thing up."""
        calls.append(input)
        return "forty-two"

    agent = agents.Agent(name="helper", instructions="Use the tool.", model="gpt", tools=[lookup])
    result = await agents.Runner.run(agent, "what is the answer")
    assert calls == ["what is the answer"]
    assert result.final_output == tool_answer("forty-two")
    if api == "chat_completions":
        assert {r.route for r in gw.world.fake.requests()} == {"openai_chat"}


async def test_chat_completions_model(gw: Clients, agents: Any) -> None:
    """The explicit model object: ``OpenAIChatCompletionsModel`` with its own client."""
    openai = need_module("openai")
    client = openai.AsyncOpenAI(base_url=gw.server.base_url, api_key=gw.key, max_retries=0)
    model = agents.OpenAIChatCompletionsModel(model="compat-gpt", openai_client=client)

    @agents.function_tool
    def lookup(input: str) -> str:
        """Look a thing up."""
        return "blue"

    agent = agents.Agent(name="helper", model=model, tools=[lookup])
    result = await agents.Runner.run(agent, "which colour")
    assert result.final_output == tool_answer("blue")
    assert {r.route for r in gw.world.fake.requests()} == {"openai_chat"}
    await client.close()
