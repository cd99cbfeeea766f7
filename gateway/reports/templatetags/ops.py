"""Number formatting for the ops pages: currency, counts, rates, latencies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()
DASH = "\u2013"  # shown for a missing value


@register.filter
def usd(value: Any) -> str:
    """``$1,234.56``; amounts under a dollar keep four decimals (``$0.0042``)."""
    if value is None or value == "":
        return DASH
    amount = Decimal(str(value))
    if amount != 0 and abs(amount) < 1:
        return f"${amount:,.4f}"
    return f"${amount:,.2f}"


@register.filter
def num(value: Any) -> str:
    if value is None or value == "":
        return DASH
    return f"{int(value):,}"


@register.filter
def compact(value: Any) -> str:
    """1.2M, 34.5k, 999."""
    if value is None:
        return DASH
    n = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{int(n):,}"


@register.filter
def pct(value: Any) -> str:
    if value is None:
        return DASH
    return f"{float(value) * 100:.1f}%"


@register.filter
def ms(value: Any) -> str:
    if value is None:
        return DASH
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 10_000 else f"{v:,.0f} ms"


@register.filter
def add_days(value: Any, days: int) -> Any:
    from datetime import timedelta

    return value + timedelta(days=int(days)) if value else value


@register.filter
def share_of(value: Any, total: Any) -> float:
    """``value`` as a percentage of ``total`` (0 when the total is 0), for bar widths."""
    try:
        total_d = Decimal(str(total))
        return float(Decimal(str(value)) / total_d * 100) if total_d else 0.0
    except (ArithmeticError, ValueError):
        return 0.0
