"""Anthropic's reasoning settings in OpenAI's terms, and which upstream models take them.

Anthropic asks for reasoning with ``thinking`` (``{"type": "enabled", "budget_tokens": N}``,
``{"type": "adaptive"}`` or ``{"type": "disabled"}``) and ``output_config.effort``; OpenAI's
reasoning models take ``reasoning_effort`` (``low`` / ``medium`` / ``high``). Other OpenAI-type
models refuse ``reasoning_effort``, so it is sent only where the model takes it: where the
mapping says so (its ``reasoning`` capability), else where the model name is one of OpenAI's
reasoning families (o1, o3, o4, gpt-5). Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: OpenAI's reasoning model families, by name (``o3-mini``, ``o4-mini-2025-04-16``,
#: ``gpt-5``, ``gpt-5.1-codex``; a ``vendor/`` prefix, as routers write it, is ignored).
REASONING_MODEL = re.compile(r"^(o1|o3|o4)(-.*)?$|^gpt-5([.\-].*)?$", re.IGNORECASE)

#: Thinking budgets (tokens) up to which an effort is enough: below 4k is a quick think,
#: below 16k a normal one, more is a deep one (Claude Code's "think" / "think hard" /
#: "ultrathink" budgets land in these three).
_BUDGET_EFFORTS = ((4096, "low"), (16384, "medium"))

#: Anthropic effort levels -> OpenAI's (OpenAI has nothing above "high").
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}


def is_reasoning_model(model: str, declared: bool | None = None) -> bool:
    """Whether ``model`` takes ``reasoning_effort``: ``declared`` (the mapping's flag) when
    given, else by the model name."""
    if declared is not None:
        return declared
    return bool(REASONING_MODEL.match(model.rsplit("/", 1)[-1].strip()))


def effort_for_budget(budget: Any) -> str:
    """The OpenAI effort for an Anthropic thinking budget."""
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        return "medium"
    for limit, effort in _BUDGET_EFFORTS:
        if budget < limit:
            return effort
    return "high"


def requested_effort(body: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The reasoning effort the request asks for (None: none asked) and the request fields
    that asked, so they can be reported as dropped where the model does not reason.

    ``output_config.effort`` wins over a thinking budget; adaptive thinking without an effort
    is "medium" (OpenAI's own default). Disabled thinking asks for nothing.
    """
    fields: list[str] = []
    effort: str | None = None
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping):
        kind = thinking.get("type")
        if kind == "enabled":
            effort = effort_for_budget(thinking.get("budget_tokens"))
            fields.append("thinking")
        elif kind == "adaptive":
            effort = "medium"
            fields.append("thinking")
    elif thinking is not None:
        fields.append("thinking")
    config = body.get("output_config")
    if isinstance(config, Mapping) and "effort" in config:
        fields.append("output_config.effort")
        asked = _EFFORTS.get(str(config.get("effort")).lower())
        if asked is not None:
            effort = asked
    return effort, fields
