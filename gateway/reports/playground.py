"""The staff playground: a chat request through the real ``/v1/chat/completions`` flow.

The caller is a staff user signed in to the admin, not a key holder, so the request enters the
flow after authentication (the same :func:`gateway.proxy.flow.serve` the ASGI front runs) with
a virtual key of its own: ``playground:<username>``, created on demand and never shown (its
plaintext is thrown away). Usage is recorded like any request's, with ``endpoint`` set to
``playground`` so reports and the request log can tell.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from asgiref.sync import sync_to_async

from gateway.core.errors import GatewayError, InvalidRequest, NotFound
from gateway.keys.models import VirtualKey
from gateway.keys.services import virtual_key_create
from gateway.proxy import flow
from gateway.proxy.context import ProxyResult, RequestContext
from gateway.proxy.endpoints.openai import CHAT
from gateway.reports.request_log import PLAYGROUND_ENDPOINT
from gateway.routing.holder import route_tables
from gateway.routing.table import RouteTable, VirtualKeySnapshot
from gateway.usage.budget_state import budget_state
from providers.health import redact

KEY_PREFIX = "playground:"
MAX_PROMPT = 20_000


def _staff_key(username: str) -> VirtualKey:
    name = (KEY_PREFIX + username)[:100]
    found = VirtualKey.objects.filter(name=name).first()
    if found is not None:
        return found
    vkey, _plaintext = virtual_key_create(name=name)  # the plaintext is never needed
    return vkey


def staff_key_snapshot(vkey: VirtualKey) -> VirtualKeySnapshot:
    """What the flow needs to know about the staff user's key (its limits and budget apply)."""
    return VirtualKeySnapshot(
        id=vkey.id,
        name=vkey.name,
        allowed_models=frozenset(vkey.allowed_models or []),
        is_enabled=True,
        expires_at=None,
        requests_per_minute=vkey.requests_per_minute,
        tokens_per_minute=vkey.tokens_per_minute,
        budget_amount=vkey.budget_amount,
        budget_period=vkey.budget_period,
    )


def pinned_table(table: RouteTable, alias: str, instance_id: int | None) -> RouteTable:
    """``table`` with ``alias`` narrowed to the one instance staff pinned (None: unchanged)."""
    if instance_id is None:
        return table
    candidates = tuple(c for c in table.candidates(alias) if c.provider.id == instance_id)
    if not candidates:
        raise NotFound(
            f"The model '{alias}' has no mapping on instance #{instance_id}.", param="instance"
        )
    return dataclasses.replace(table, aliases={**table.aliases, alias: candidates})


def redact_for(table: RouteTable, alias: str, text: str) -> str:
    """``text`` without any key of any instance serving ``alias`` (upstream errors echo them)."""
    for candidate in table.candidates(alias):
        text = redact(text, candidate.provider)
    return text


@dataclasses.dataclass
class PlaygroundRun:
    """A started playground request: its context (attempts, request id) and its result."""

    ctx: RequestContext
    table: RouteTable
    result: ProxyResult | None = None
    error: GatewayError | None = None


async def playground_start(
    *, username: str, alias: str, prompt: str, instance_id: int | None, max_tokens: int | None
) -> PlaygroundRun:
    """Run the flow up to the first byte of the answer (a stream), or to its error."""
    if not alias:
        raise InvalidRequest("Pick a model alias.", param="alias")
    if not prompt.strip():
        raise InvalidRequest("Type a prompt.", param="prompt")
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT} characters.")
    vkey = await sync_to_async(_staff_key)(username)
    table = pinned_table(await route_tables.get(), alias, instance_id)
    body: dict[str, Any] = {
        "model": alias,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if max_tokens:
        body["max_tokens"] = max_tokens
    ctx = RequestContext(
        vkey=staff_key_snapshot(vkey), endpoint=PLAYGROUND_ENDPOINT, client_headers={}
    )
    run = PlaygroundRun(ctx=ctx, table=table)
    try:
        await budget_state.check(ctx.vkey)  # the staff key's budget applies, as on /v1
        run.result = await flow.serve(CHAT, table, ctx, CHAT.validate(body))
    except GatewayError as error:
        run.error = error
    return run
