"""Read-only ``GET`` endpoints answered from the route table: ``/v1/models``,
``/v1/models/{alias}`` and ``/v1/route`` (why a request would go where it goes)."""

from __future__ import annotations

from typing import Any

from gateway.core.errors import InvalidRequest, NotFound
from gateway.proxy.flow import resolve
from gateway.routing.plan import (
    estimate_completion_tokens,
    estimate_prompt_tokens,
    explain,
    explain_for_client,
    route_plan,
)
from gateway.routing.table import RouteTable, VirtualKeySnapshot


def _model_entry(alias: str, created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "llm-gateway"}


async def list_models(
    table: RouteTable, vkey: VirtualKeySnapshot, query: dict[str, list[str]], rest: str
) -> dict[str, Any]:
    """The aliases this key may use, in OpenAI's list format."""
    created = int(table.built_at)
    data = [_model_entry(a, created) for a in sorted(table.aliases) if vkey.allows(a)]
    return {"object": "list", "data": data}


async def get_model(
    table: RouteTable, vkey: VirtualKeySnapshot, query: dict[str, list[str]], rest: str
) -> dict[str, Any]:
    """One alias (``rest`` of the path) in OpenAI's model format."""
    if rest not in table.aliases or not vkey.allows(rest):
        # Same answer for "unknown" and "not yours": don't reveal other apps' aliases.
        raise NotFound(f"The model '{rest}' does not exist.", param="model")
    return _model_entry(rest, int(table.built_at))


async def route_explain(
    table: RouteTable, vkey: VirtualKeySnapshot, query: dict[str, list[str]], rest: str
) -> dict[str, Any]:
    """``GET /v1/route?model=ALIAS[&endpoint=embeddings]``: the order a request would try
    right now, and why. Reads shared state without counting anything (no limit consumed, no
    round-robin turn)."""
    alias = (query.get("model") or [""])[0]
    if not alias:
        raise InvalidRequest(
            "Missing required query parameter: 'model'.", code="missing_required_parameter"
        )
    need = "embeddings" if (query.get("endpoint") or [""])[0] == "embeddings" else "chat"
    candidates = resolve(table, vkey, alias, need=need)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": ""}]}
    route = await route_plan(
        table,
        vkey,
        alias,
        candidates,
        prompt_tokens=estimate_prompt_tokens(body),
        completion_tokens=estimate_completion_tokens(body),
        consume=False,
    )
    return explain_for_client(explain(table, route, alias))
