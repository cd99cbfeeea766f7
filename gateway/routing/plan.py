"""A request's route: candidates ordered by the strategy, minus the ones to skip, with reasons.

Used by the pipeline (to try candidates in order) and by ``GET /v1/route`` (to explain the
order without sending anything).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.core.errors import RateLimited
from gateway.routing import state
from gateway.routing.selection import estimated_cost, order_explained
from gateway.routing.state import InstanceView, RouteView
from gateway.routing.state.windows import over_limit
from gateway.routing.table import Candidate, RouteTable, VirtualKeySnapshot
from providers.circuit import CircuitState

# Completion tokens assumed when a request sets no max (for least_cost only).
DEFAULT_COMPLETION_ESTIMATE = 256


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """A cheap estimate of the prompt's tokens: ~4 bytes of JSON per token.

    Good enough for limits that are corrected with the real usage afterwards; ``tiktoken``
    would cost a tokenizer run per request on the hot path for a number that is replaced anyway.
    """
    payload = body.get("messages") if "messages" in body else body.get("input")
    if payload is None:
        return 1
    return max(1, len(orjson.dumps(payload)) // 4)


def estimate_completion_tokens(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_COMPLETION_ESTIMATE


@dataclass(slots=True)
class RoutePlan:
    strategy: str
    view: RouteView
    ordered: list[tuple[Candidate, str]]  # to try, in order, with why
    skipped: list[tuple[Candidate, str]] = field(default_factory=list)
    forced: Candidate | None = None  # every candidate open: the first to recover
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_try(self) -> list[Candidate]:
        if self.ordered:
            return [c for c, _ in self.ordered]
        return [self.forced] if self.forced is not None else []


def _skip_reason(c: Candidate, info: InstanceView, now: float, prompt_tokens: int) -> str:
    p = c.provider
    if info.circuit == CircuitState.OPEN and (info.retry_at or 0) > now:
        return f"circuit open until {info.retry_at:.0f} (in {info.retry_at - now:.1f} s)"  # type: ignore[operator]
    # The acquire's own rule (lua/limits.lua rl_over, windows.over_limit): skipped here
    # exactly when the attempt would be refused. With a sliding window the count is
    # fractional (2.99 of 3 just after a window turns), and such an instance has no room
    # for one more request.
    if over_limit(info.rpm_used, p.requests_per_minute, 1):
        return f"instance at its limit of {p.requests_per_minute} requests per minute"
    if over_limit(info.tpm_used, p.tokens_per_minute, prompt_tokens):
        return f"instance at its limit of {p.tokens_per_minute} tokens per minute"
    return ""


def _all_cooling(c: Candidate, info: InstanceView | None) -> bool:
    keys = c.provider.keys
    return bool(info and keys and all(k.account_group in info.cooling for k in keys))


def key_rate_limit_error(exc: state.KeyRateLimited) -> RateLimited:
    return RateLimited(
        f"Rate limit reached for this API key: {exc.limit} {exc.which} per minute. "
        f"Try again in {exc.retry_after} s.",
        retry_after=exc.retry_after,
    )


async def route_plan(
    table: RouteTable,
    vkey: VirtualKeySnapshot,
    alias: str,
    candidates: list[Candidate],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    consume: bool = True,
) -> RoutePlan:
    """Order ``candidates`` for this request; with ``consume`` count it against the key.

    Raises :class:`RateLimited` when the virtual key is over its limits.
    """
    strategy = table.strategy_for(alias)
    try:
        view = await state.route_view_read(
            alias=alias,
            provider_groups={c.provider.id: state.groups_of(c.provider.keys) for c in candidates},
            round_robin=strategy == "round_robin",
            vkey_id=vkey.id,
            vkey_rpm=vkey.requests_per_minute,
            vkey_tpm=vkey.tokens_per_minute,
            est_tokens=prompt_tokens,
            consume_key=consume,
            # One candidate: its first attempt will take it whatever the view says, so take
            # it in the same round trip (the attempt loop uses or releases view.lease).
            acquire=(
                candidates[0].provider.requests_per_minute,
                candidates[0].provider.tokens_per_minute,
            )
            if len(candidates) == 1
            else None,
        )
    except state.KeyRateLimited as exc:
        raise key_rate_limit_error(exc) from None
    ordered = order_explained(
        candidates,
        strategy,
        view,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    now = time.time()
    plan = RoutePlan(
        strategy=strategy,
        view=view,
        ordered=[],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    for c, why in ordered:
        reason = _skip_reason(c, view.instances.get(c.provider.id) or InstanceView(), now, 0)
        if reason:
            plan.skipped.append((c, reason))
        else:
            plan.ordered.append((c, why))
    # An instance whose every account group is cooling goes last rather than out: cooling is
    # a hint from a recent 429, the instance may well answer by the time it is reached.
    cooling = [
        (c, why + "; every key's account group is cooling after a 429: tried last")
        for c, why in plan.ordered
        if _all_cooling(c, view.instances.get(c.provider.id))
    ]
    if cooling:
        plan.ordered = [
            (c, why)
            for c, why in plan.ordered
            if not _all_cooling(c, view.instances.get(c.provider.id))
        ] + cooling
    if not plan.ordered:
        open_ones = [
            c
            for c, _ in plan.skipped
            if (info := view.instances.get(c.provider.id)) and info.circuit == CircuitState.OPEN
        ]
        if open_ones:
            plan.forced = min(
                open_ones,
                key=lambda c: view.instances[c.provider.id].retry_at or 0.0,
            )
    return plan


def explain(table: RouteTable, plan: RoutePlan, alias: str) -> dict[str, Any]:
    """``GET /v1/route`` output: what a request for ``alias`` would do right now."""

    def entry(c: Candidate, *, position: int | None, reason: str) -> dict[str, Any]:
        info = plan.view.instances.get(c.provider.id) or InstanceView()
        p = c.provider
        key = next((k for k in p.keys if k.account_group not in info.cooling), None)
        cost = estimated_cost(c, plan.prompt_tokens, plan.completion_tokens)
        return {
            "position": position,
            "mapping_id": c.mapping_id,
            "provider_id": p.id,
            "provider_name": p.name,
            "provider_type": p.provider_type,
            "provider_model": c.provider_model,
            "priority": c.priority,
            "weight": c.weight,
            "key_name": key.name if key else None,
            "circuit": {
                "state": str(info.circuit),
                "failure_count": info.failure_count,
                "retry_at": info.retry_at,
            },
            "in_flight": info.inflight,
            "latency_ms": info.latency_ms,
            "limits": {
                "requests_per_minute": p.requests_per_minute,
                "requests_used": round(info.rpm_used, 2),
                "requests_headroom": None
                if p.requests_per_minute is None
                else max(0.0, round(p.requests_per_minute - info.rpm_used, 2)),
                "tokens_per_minute": p.tokens_per_minute,
                "tokens_used": round(info.tpm_used, 2),
                "tokens_headroom": None
                if p.tokens_per_minute is None
                else max(0.0, round(p.tokens_per_minute - info.tpm_used, 2)),
            },
            "cooling_account_groups": {str(g): round(s, 2) for g, s in info.cooling.items()},
            "price": None
            if c.price is None
            else {
                "input_per_million": str(c.price.input_per_million),
                "output_per_million": str(c.price.output_per_million),
                "estimated_cost": str(cost) if cost is not None else None,
            },
            "reason": reason,
        }

    candidates = [entry(c, position=i + 1, reason=why) for i, (c, why) in enumerate(plan.ordered)]
    if plan.forced is not None:
        candidates.append(
            entry(
                plan.forced,
                position=1,
                reason="every candidate's circuit is open: tried anyway as the first to recover",
            )
        )
    skipped = [
        entry(c, position=None, reason=reason) for c, reason in plan.skipped if c is not plan.forced
    ]
    return {
        "object": "route",
        "model": alias,
        "strategy": plan.strategy,
        "strategy_source": "alias" if alias in table.alias_strategies else "global",
        "estimated_prompt_tokens": plan.prompt_tokens,
        "candidates": candidates,
        "skipped": skipped,
    }


#: Per-candidate fields of :func:`explain` that describe the whole instance (every tenant's
#: traffic) or name a provider key: staff see them (admin), a virtual key does not.
_INSTANCE_WIDE = ("key_name", "in_flight", "latency_ms", "cooling_account_groups")
_INSTANCE_WIDE_LIMITS = ("requests_used", "requests_headroom", "tokens_used", "tokens_headroom")


def explain_for_client(explained: dict[str, Any]) -> dict[str, Any]:
    """``explain`` as a virtual key sees it (``GET /v1/route``): the order, the reasons, the
    configured limits and prices, but no other tenant's usage, no instance-wide counts and
    no provider key names."""

    def own(entry: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in entry.items() if k not in _INSTANCE_WIDE}
        kept["circuit"] = {k: v for k, v in entry["circuit"].items() if k != "failure_count"}
        kept["limits"] = {
            k: v for k, v in entry["limits"].items() if k not in _INSTANCE_WIDE_LIMITS
        }
        return kept

    return {
        **explained,
        "candidates": [own(e) for e in explained["candidates"]],
        "skipped": [own(e) for e in explained["skipped"]],
    }


def explain_alias_sync(alias: str) -> dict[str, Any]:
    """The route explanation for ``alias`` from sync code (the admin): a fresh table from the
    database and the shared state as a request would see it, counting nothing."""
    from asgiref.sync import async_to_sync

    from gateway.routing.table import route_table_build

    table = route_table_build()
    # A mapping declared unable to do either serves nothing (undeclared ones are candidates).
    candidates = [
        c
        for c in table.candidates(alias)
        if c.supports_chat is not False or c.supports_embeddings is not False
    ]
    anyone = VirtualKeySnapshot(
        id=0,
        name="admin",
        allowed_models=frozenset(),
        is_enabled=True,
        expires_at=None,
        requests_per_minute=None,
        tokens_per_minute=None,
        budget_amount=None,
        budget_period="",
    )
    body: dict[str, Any] = {"messages": [{"role": "user", "content": ""}]}
    plan = async_to_sync(route_plan)(
        table,
        anyone,
        alias,
        candidates,
        prompt_tokens=estimate_prompt_tokens(body),
        completion_tokens=estimate_completion_tokens(body),
        consume=False,
    )
    return explain(table, plan, alias)
