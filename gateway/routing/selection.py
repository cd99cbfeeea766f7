"""Ordering candidates and choosing keys within an instance (ConduitLLM semantics)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from gateway.routing.state import RouteView
from gateway.routing.table import Candidate
from providers.snapshot import KeySnapshot

_rng = random.Random()  # noqa: S311 - load spreading, not security


STRATEGIES = (
    "priority",
    "round_robin",
    "weighted",
    "random",
    "least_cost",
    "lowest_latency",
    "least_busy",
)


def _prio(c: Candidate) -> tuple[int, int]:
    return (c.priority, c.mapping_id)


def estimated_cost(c: Candidate, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    """The candidate's price for the estimated tokens (None: no price known)."""
    if c.price is None:
        return None
    return (
        c.price.input_per_million * prompt_tokens + c.price.output_per_million * completion_tokens
    ) / Decimal(1_000_000)


def order_explained(
    candidates: Sequence[Candidate],
    strategy: str,
    view: RouteView | None = None,
    *,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    rng: random.Random | None = None,
) -> list[tuple[Candidate, str]]:
    """Candidates in the order to try them, each with why it sits there.

    Every strategy yields a full order: the remaining candidates are the fallbacks.
    Ties always break by priority, then mapping id.
    """
    rng = rng or _rng
    base = sorted(candidates, key=_prio)
    if strategy == "round_robin" and base:
        n = (view.rr - 1 if view else 0) % len(base)
        rotated = base[n:] + base[:n]
        return [(c, f"round robin turn {view.rr if view else 0}, position {i + 1}")
                for i, c in enumerate(rotated)]  # fmt: skip
    if strategy == "weighted":
        # Efraimidis-Spirakis: a weighted random order, so the fallbacks are weighted too.
        keyed = sorted(base, key=lambda c: -(rng.random() ** (1.0 / max(1, c.weight))))
        return [(c, f"weighted draw (weight {c.weight})") for c in keyed]
    if strategy == "random":
        shuffled = list(base)
        rng.shuffle(shuffled)
        return [(c, "random draw") for c in shuffled]
    if strategy == "least_cost":
        costs = {c.mapping_id: estimated_cost(c, prompt_tokens, completion_tokens) for c in base}

        def cost_key(c: Candidate) -> tuple[int, Decimal, int, int]:
            cost = costs[c.mapping_id]
            return (cost is None, cost or Decimal(0), *_prio(c))

        return [
            (
                c,
                f"estimated cost {costs[c.mapping_id]:.8f}"
                if costs[c.mapping_id] is not None
                else "no price: after priced instances",
            )
            for c in sorted(base, key=cost_key)
        ]
    if strategy == "lowest_latency":

        def lat(c: Candidate) -> float:
            info = view.instances.get(c.provider.id) if view else None
            # Unmeasured instances go first: that is how they get measured.
            return info.latency_ms if info and info.latency_ms is not None else 0.0

        return [
            (c, f"latency average {lat(c):.1f} ms" if lat(c) else "latency not measured yet")
            for c in sorted(base, key=lambda c: (lat(c), *_prio(c)))
        ]
    if strategy == "least_busy":

        def busy(c: Candidate) -> int:
            info = view.instances.get(c.provider.id) if view else None
            return info.inflight if info else 0

        return [
            (c, f"{busy(c)} in flight") for c in sorted(base, key=lambda c: (busy(c), *_prio(c)))
        ]
    return [(c, f"priority {c.priority}") for c in base]


def order_candidates(
    candidates: Sequence[Candidate], strategy: str, view: RouteView | None = None, **kw: Any
) -> list[Candidate]:
    """Candidates in the order to try them (see :func:`order_explained`)."""
    return [c for c, _ in order_explained(candidates, strategy, view, **kw)]


class KeyCursor:
    """Walks an instance's keys in the order the rules require.

    First the primary enabled key, else the first enabled key. After a 401/403 the next
    untried key of the instance; after a 429/quota error the next untried key of a *different*
    account group (keys of one group share the upstream account's limits).

    ``cooling``: account groups that another request saw rate-limited recently (shared
    state): their keys are skipped from the start.
    """

    def __init__(self, keys: Sequence[KeySnapshot], *, cooling: set[int] | None = None) -> None:
        self._keys = list(keys)
        self._tried: set[int] = set()
        self._cooling_groups: set[int] = set(cooling or ())

    def first(self) -> KeySnapshot | None:
        """The first key outside cooling groups; when every group cools, the first key anyway
        (cooling orders keys, it does not take the last way to the upstream away)."""
        return self._next(lambda k: k.account_group not in self._cooling_groups) or self._next(
            lambda k: True
        )

    def after_auth_failure(self, key: KeySnapshot) -> KeySnapshot | None:
        self._tried.add(key.id)
        return self._next(lambda k: k.account_group not in self._cooling_groups)

    def after_rate_limit(self, key: KeySnapshot) -> KeySnapshot | None:
        self._tried.add(key.id)
        self._cooling_groups.add(key.account_group)
        return self._next(lambda k: k.account_group not in self._cooling_groups)

    def _next(self, ok: object) -> KeySnapshot | None:
        for key in self._keys:
            if key.id not in self._tried and ok(key):  # type: ignore[operator]
                return key
        return None
