"""Writes on virtual keys (HackSoft style: keyword-only, typed, one verb each)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from gateway.keys.models import BudgetPeriod, VirtualKey, generate_key


@transaction.atomic
def virtual_key_create(
    *,
    name: str,
    key: str | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    is_enabled: bool = True,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    budget_amount: Decimal | None = None,
    budget_period: str = BudgetPeriod.MONTHLY,
    budget_alert_threshold: Decimal = Decimal("0.8"),
) -> tuple[VirtualKey, str]:
    """Create a virtual key and return it with its plaintext (the only time it exists).

    ``key`` lets configuration-as-code bring its own key; otherwise one is generated.
    """
    plaintext = key or generate_key()
    vkey = VirtualKey(
        name=name,
        allowed_models=list(allowed_models or []),
        expires_at=expires_at,
        is_enabled=is_enabled,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        budget_amount=budget_amount,
        budget_period=budget_period,
        budget_alert_threshold=budget_alert_threshold,
    )
    vkey.set_key(plaintext)
    vkey.full_clean()
    vkey.save()
    return vkey, plaintext


# Longest grace period a rotation may give the old key.
MAX_ROTATION_GRACE = timedelta(days=30)


@transaction.atomic
def virtual_key_rotate(
    *, vkey: VirtualKey, key: str | None = None, grace: timedelta = timedelta(0)
) -> str:
    """Replace the key of ``vkey`` and return the new plaintext (the only time it exists).

    Without ``grace`` the old key stops working at the next config refresh; with it the old key
    is accepted until ``now + grace`` (at most :data:`MAX_ROTATION_GRACE`), then refused (401).
    A rotation replaces any earlier grace key: only the key just replaced gets the grace.
    """
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise ValueError(f"grace must be between 0 and {MAX_ROTATION_GRACE.days} days")
    plaintext = key or generate_key()
    if grace:
        vkey.previous_key_hash = vkey.key_hash
        vkey.previous_key_expires_at = timezone.now() + grace
    else:
        vkey.previous_key_hash, vkey.previous_key_expires_at = "", None
    vkey.set_key(plaintext)
    vkey.save(
        update_fields=[
            "key_hash",
            "key_prefix",
            "previous_key_hash",
            "previous_key_expires_at",
            "updated_at",
        ]
    )
    return plaintext
