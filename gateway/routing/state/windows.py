"""Rate-limit windows and the Redis key names of the routing state, shared by both backends.

Key names carry a Redis Cluster hash tag (the ``{...}`` part): every key of one virtual key
(``{v:<id>}``) lives in one hash slot, and every key of one instance (``{i:<id>}``: its
breaker, in-flight hash, windows and cooling keys) in one slot, so a script that touches one
key's or one instance's keys runs on one cluster node. ``instance_tag`` is shared with the
breaker's key (:func:`providers.circuit.circuit_key`).

Rate limits are sliding windows approximated by two fixed windows (the previous one weighted
by how much of it still overlaps): O(1) memory and one GET per counter, accurate to a few
percent, the approach Cloudflare and the ``limits`` library's "sliding window counter" use.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from providers.circuit import instance_tag

# The window's length, read from settings once: every routing step reads it (a few times per
# request) and settings are a lazy object. Re-read when a test overrides it.
_window: list[float] = []


def window() -> float:
    """The rate-limit window, in seconds."""
    if not _window:
        _window.append(float(settings.GATEWAY_RATE_LIMIT_WINDOW))
    return _window[0]


@receiver(setting_changed)
def _window_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "GATEWAY_RATE_LIMIT_WINDOW":
        _window.clear()


def window_at(now: float) -> tuple[int, float]:
    """The index of the window ``now`` falls in, and how far into it (0..1)."""
    w = window()
    return int(now // w), (now % w) / w


def window_ttl() -> int:
    """How long a window's counter must live: while it is the current or the previous one."""
    return int(window() * 2) + 2


def window_keys(scope: str, ident: int, now: float) -> tuple[str, str, str, str]:
    """Requests current, requests previous, tokens current, tokens previous.

    ``scope``: "k" a virtual key, "p" a provider instance.
    """
    return window_keys_at(scope, ident, window_at(now)[0])


# Each request names its key's and its candidates' windows: the same few strings for a whole
# window. Bounded: a window's names are asked for again only until the next window.
@lru_cache(maxsize=4096)
def window_keys_at(scope: str, ident: int, idx: int) -> tuple[str, str, str, str]:
    """:func:`window_keys` of the window numbered ``idx``."""
    base = f"gw:{{v:{ident}}}:rl" if scope == "k" else f"gw:{instance_tag(ident)}:rl"
    return f"{base}:r:{idx}", f"{base}:r:{idx - 1}", f"{base}:t:{idx}", f"{base}:t:{idx - 1}"


def instance_key(pid: int) -> str:
    """The hash of an instance's in-flight count and latency average."""
    return f"gw:{instance_tag(pid)}:inst"


def cooling_key(pid: int, group: int) -> str:
    """Present (with a TTL) while an account group of an instance is cooling."""
    return f"gw:{instance_tag(pid)}:cool:{group}"


def round_robin_key(alias: str) -> str:
    return f"gw:rr:{alias}"


def over_limit(used: float, limit: int | None, cost: float) -> bool:
    """``rl_over`` of ``lua/limits.lua``: would ``cost`` more go over ``limit``?"""
    return limit is not None and used > 0 and used + cost > limit


def limit_arg(limit: int | None) -> int:
    """A limit as the Lua scripts take it: -1 for none."""
    return -1 if limit is None else int(limit)


def retry_after_for(limit: float, cost: float, cur: float, prev: float, now: float) -> int:
    """Seconds until a sliding window with counts ``cur``/``prev`` admits ``cost`` more."""
    w = window()
    _, frac = window_at(now)
    if cur + cost > limit:
        # Not before the next window; then the current count decays as the old one did.
        need = 1 - (limit - cost) / cur if cur > 0 else 0.0
        wait = (1 - frac) * w + max(0.0, need) * w
    else:
        need = 1 - (limit - cur - cost) / prev if prev > 0 else 0.0
        wait = max(0.0, need - frac) * w
    return max(1, math.ceil(min(wait, 2 * w)))
