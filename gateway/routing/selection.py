"""Ordering candidates and choosing keys within an instance (ConduitLLM semantics)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.routing.table import Candidate
from providers.snapshot import KeySnapshot


def order_candidates(candidates: Sequence[Candidate], strategy: str) -> list[Candidate]:
    """Candidates in the order to try them. ``priority``: lowest number first, ties by ID."""
    return sorted(candidates, key=lambda c: (c.priority, c.mapping_id))


class KeyCursor:
    """Walks an instance's keys in the order the rules require.

    First the primary enabled key, else the first enabled key. After a 401/403 the next
    untried key of the instance; after a 429/quota error the next untried key of a *different*
    account group (keys of one group share the upstream account's limits).
    """

    def __init__(self, keys: Sequence[KeySnapshot]) -> None:
        self._keys = list(keys)
        self._tried: set[int] = set()
        self._cooling_groups: set[int] = set()

    def first(self) -> KeySnapshot | None:
        return self._next(lambda k: True)

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
