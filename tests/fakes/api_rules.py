"""What the real APIs refuse with a 400, checked by the fake upstream before it answers.

The fake must accept what the real APIs accept and refuse what they refuse, in their words,
so that a gateway bug (a translation that sends what OpenAI refuses, a check stricter than
Anthropic's) shows up in tests; it never repeats the gateway's own rules.
"""

from __future__ import annotations

from typing import Any

#: Models the fake answers as OpenAI's reasoning models do (its catalogue, like the real one's).
OPENAI_REASONING_MODELS = ("o3-mini", "o4-mini", "gpt-5", "fake-reasoner")
#: Every effort level some current reasoning model takes.
OPENAI_REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def openai_request_problem(body: dict[str, Any], model: str) -> str | None:
    """What OpenAI refuses per model: reasoning models take ``max_completion_tokens`` and
    ``reasoning_effort``, not ``max_tokens``; other models refuse ``reasoning_effort``."""
    if model in OPENAI_REASONING_MODELS:
        if "max_tokens" in body:
            return (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
        effort = body.get("reasoning_effort")
        # The fake must not refuse what the real API accepts for one of its models.
        if effort is not None and effort not in OPENAI_REASONING_EFFORTS:
            return (
                f"Invalid value: '{effort}'. Supported values are: 'none', 'minimal', 'low', "
                "'medium', 'high' and 'xhigh'."
            )
    elif "reasoning_effort" in body:
        return "Unrecognized request argument supplied: reasoning_effort"
    return None


#: The largest ``dimensions`` OpenAI's embedding models produce (text-embedding-3-large).
OPENAI_MAX_DIMENSIONS = 3072


def openai_embeddings_problem(body: dict[str, Any]) -> str | None:
    """What OpenAI's embeddings endpoint refuses: ``input`` neither a string nor a non-empty
    array (of strings or token arrays), ``dimensions`` not an integer in range."""
    value = body.get("input")
    if not isinstance(value, str) and not (isinstance(value, list) and value):
        return "'input' : input must be a string or an array of strings or tokens"
    dims = body.get("dimensions")
    if dims is not None and (
        not isinstance(dims, int)
        or isinstance(dims, bool)
        or not 1 <= dims <= OPENAI_MAX_DIMENSIONS
    ):
        return f"Invalid 'dimensions': must be an integer from 1 to {OPENAI_MAX_DIMENSIONS}."
    return None


#: The beta under which the Messages API takes ``role: "system"`` inside ``messages``.
MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"


def anthropic_messages_problem(messages: Any, headers: dict[str, str]) -> str | None:
    """What the real API refuses in ``messages`` (for messages and count_tokens alike).

    A ``system`` message is accepted with the mid-conversation-system beta (anywhere: no
    placement rule is documented, and a fake must not be stricter than the real API);
    without the beta it is refused with the API's own wording (which clients match on to
    retry without the beta).
    """
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",")}
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = message.get("role")
        if role in ("user", "assistant"):
            continue
        if role == "system" and MID_CONVERSATION_SYSTEM_BETA in betas:
            continue
        return (
            f'messages.{i}: Unexpected role "{role}". The Messages API accepts a top-level '
            f'`system` parameter, not "{role}" as an input message role.'
        )
    return None


def anthropic_request_problem(body: Any, headers: dict[str, str]) -> str | None:
    """What the real Messages API would refuse with a 400 (checked so translation bugs show)."""
    if "anthropic-version" not in headers:
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "body: expected an object"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    problem = anthropic_messages_problem(messages, headers)
    if problem:
        return problem
    assert isinstance(messages, list)
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            previous = messages[i - 1].get("content") if i else None
            ids = {
                b.get("id")
                for b in (previous if isinstance(previous, list) else [])
                if isinstance(b, dict) and b.get("type") == "tool_use"
            }
            if block.get("tool_use_id") not in ids:
                return (
                    f"messages.{i}: unexpected tool_use_id found in tool_result blocks: "
                    f"{block.get('tool_use_id')}. Each tool_result block must have a "
                    "corresponding tool_use block in the previous message."
                )
    for key in ("n", "stream_options", "logprobs", "frequency_penalty", "presence_penalty"):
        if key in body:
            return f"{key}: Extra inputs are not permitted"
    return None


#: What Mistral's chat endpoint accepts; anything else is a 422 ("extra_forbidden").
MISTRAL_CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "safe_prompt",
        "prompt_mode",
    }
)
#: Fields a cloud documents as unsupported (a 400 when present), per path prefix.
CLOUD_REFUSED = {
    "/groq/": ("logprobs", "logit_bias", "top_logprobs"),
    "/cerebras/": ("frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls"),
}


def cloud_chat_problem(path: str, body: dict[str, Any]) -> tuple[int, str] | None:
    """(status, message) when the cloud the fake imitates under ``path`` would refuse ``body``.

    The fake serves OpenAI's API everywhere; under ``/mistral/``, ``/groq/`` or ``/cerebras/``
    it also refuses what that cloud refuses, as that cloud does.
    """
    if path.startswith("/mistral/"):
        extra = sorted(set(body) - MISTRAL_CHAT_FIELDS)
        if extra:
            return 422, f"body.{extra[0]}: Extra inputs are not permitted"
        return None
    for prefix, refused in CLOUD_REFUSED.items():
        if path.startswith(prefix):
            for name in refused:
                if name in body:
                    return 400, f"`{name}` is not supported"
    return None
